/**
 * Fault injection around the real ports: a worker "dies" at a chosen boundary of a chosen step. The
 * wrappers never touch lib/; they stand between the engine and the real store, queue and timers.
 */

import type { RunQuery, WorkflowEvent } from "tsworkflow";
import type {
  ActivationTask,
  EventStore,
  NewRun,
  RunPatch,
  StepOutcome,
  StepTask,
  TaskQueue,
  TimerRequest,
  Timers,
} from "tsworkflow/engine";

/** Thrown where a simulated worker dies: the task it was handling is never acknowledged. */
export class WorkerCrash extends Error {
  override name = "WorkerCrash";
}

/**
 * Where the worker dies, for the step the plan names:
 * - `before-step`: the commit that starts the step is stored, the step task is never sent;
 * - `before-outcome`: the step function ran, its outcome is never stored;
 * - `before-wake`: the outcome is stored, the activation that should consume it is never sent;
 * - `after-commit`: the commit is stored, nothing it asks for (tasks, timers) is sent;
 * - `after-retry-commit`: the commit recording a failed attempt's retry is stored, its retry timer is never armed;
 * - `before-outcome-commit`: the step ran, the commit that would record its outcome is never stored (with
 *   inline steps, the step's outcome then lived only in the dead worker's memory).
 */
export type Boundary =
  | "before-step"
  | "before-outcome"
  | "before-wake"
  | "after-commit"
  | "after-retry-commit"
  | "before-outcome-commit";

export const BOUNDARIES: readonly Boundary[] = [
  "before-step",
  "before-outcome",
  "before-wake",
  "after-commit",
];

export interface CrashPlan {
  boundary: Boundary;
  /** The step id the crash is about, e.g. `cm_b#0` (attempt 1). */
  stepId: string;
  /**
   * After the crash the worker is dead: its store calls reject and what it sends is lost, until it is
   * stopped (a process that died). With `false`, only the call at the boundary fails (a Lambda
   * invocation that died: the next invocation is a new process).
   * @default true
   */
  dead?: boolean;
}

/** One worker's fate: trips once at the planned boundary. */
export class CrashSwitch {
  crashed = false;
  /** Resolves when the worker has died. */
  readonly tripped: Promise<void>;
  private resolveTripped: () => void = () => {};

  constructor(readonly plan: CrashPlan | undefined) {
    this.tripped = new Promise((resolve) => {
      this.resolveTripped = resolve;
    });
  }

  /** True while the worker is dead (calls must not reach the real ports). */
  get dead(): boolean {
    return this.crashed && (this.plan?.dead ?? true);
  }

  /** Dies here when this is the planned boundary of the planned step (once). */
  maybeTrip(boundary: Boundary, stepId: string | undefined): void {
    if (this.crashed || !this.plan || this.plan.boundary !== boundary || this.plan.stepId !== stepId) return;
    this.crashed = true;
    this.resolveTripped();
    throw new WorkerCrash(`worker died at ${boundary} of ${stepId}`);
  }

  assertAlive(): void {
    if (this.dead) throw new WorkerCrash("the worker is dead");
  }
}

/** The store as a worker sees it: calls fail once the worker is dead; `putOutcome` and `commit` may trip. */
export function faultyStore(store: EventStore, crash: CrashSwitch): EventStore {
  const alive = async <T>(call: () => Promise<T>): Promise<T> => {
    crash.assertAlive();
    return call();
  };
  return {
    createRun: (newRun: NewRun) => alive(() => store.createRun(newRun)),
    getRun: (runId: string) => alive(() => store.getRun(runId)),
    listRuns: (query?: RunQuery) => alive(() => store.listRuns(query)),
    getEvents: (runId: string) => alive(() => store.getEvents(runId)),
    getOutcome: (runId: string, stepId: string, attempt: number, issueSeq?: number) =>
      alive(() => store.getOutcome(runId, stepId, attempt, issueSeq)),
    listOutcomes: (runId: string, fromSeq?: number, settled?: boolean) =>
      alive(() => store.listOutcomes(runId, fromSeq, settled)),
    putOutcome: (outcome: StepOutcome) =>
      alive(async () => {
        if (outcome.attempt === 1) crash.maybeTrip("before-outcome", outcome.stepId);
        return store.putOutcome(outcome);
      }),
    commit: (runId: string, expectedVersion: number, events: WorkflowEvent[], patch: RunPatch) =>
      alive(async () => {
        for (const event of events) {
          if ((event.type === "step_completed" || event.type === "step_failed") && event.attempt === 1)
            crash.maybeTrip("before-outcome-commit", event.stepId);
        }
        const result = await store.commit(runId, expectedVersion, events, patch);
        for (const event of events) {
          if (event.type === "step_started" && event.attempt === 1)
            crash.maybeTrip("after-commit", event.stepId);
          if (event.type === "step_retrying") crash.maybeTrip("after-retry-commit", event.stepId);
        }
        return result;
      }),
    close: () => store.close(),
  };
}

/** The queue as a worker sees it: a dead worker sends nothing; `enqueueStep` and wake-ups may trip. */
export function faultyQueue(queue: TaskQueue, crash: CrashSwitch): TaskQueue {
  return {
    async enqueueActivation(task: ActivationTask) {
      if (crash.dead) return;
      if (task.cause.kind === "outcome" && task.cause.attempt === 1)
        crash.maybeTrip("before-wake", task.cause.stepId);
      await queue.enqueueActivation(task);
    },
    async enqueueStep(task: StepTask) {
      if (crash.dead) return;
      if (task.attempt === 1) crash.maybeTrip("before-step", task.stepId);
      await queue.enqueueStep(task);
    },
    ...(queue.reserveStepSlot ? { reserveStepSlot: (task: StepTask) => queue.reserveStepSlot?.(task) } : {}),
  };
}

/** Timers as a worker sees them: a dead worker arms and cancels nothing. */
export function faultyTimers(timers: Timers, crash: CrashSwitch): Timers {
  return {
    async schedule(timer: TimerRequest) {
      if (!crash.dead) await timers.schedule(timer);
    },
    async cancel(runId: string, timerId: string) {
      if (!crash.dead) await timers.cancel(runId, timerId);
    },
  };
}
