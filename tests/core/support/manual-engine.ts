import type { RunRecord, WorkflowEvent } from "tsworkflow";
import type {
  ActivationTask,
  Clock,
  EventStore,
  QueueLimits,
  RunLimits,
  StepLimits,
  StepTask,
  TaskQueue,
  TelemetryFactory,
  TimerRequest,
  Timers,
} from "tsworkflow/engine";
import { Engine } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";

/** A task queue that only records what it is given: the test decides when each task runs. */
export class RecordingQueue implements TaskQueue {
  readonly activations: ActivationTask[] = [];
  readonly steps: StepTask[] = [];

  /** @param limits what the queue declares it can carry (see `TaskQueue.limits`) */
  constructor(readonly limits?: QueueLimits) {}

  async enqueueActivation(task: ActivationTask): Promise<void> {
    this.activations.push(structuredClone(task));
  }

  async enqueueStep(task: StepTask): Promise<void> {
    this.steps.push(structuredClone(task));
  }

  takeActivations(): ActivationTask[] {
    return this.activations.splice(0);
  }

  takeSteps(): StepTask[] {
    return this.steps.splice(0);
  }
}

/** Timers that never fire by themselves; the latest `schedule` of a timer id wins, as in the real ones. */
export class RecordingTimers implements Timers {
  readonly pending = new Map<string, TimerRequest>();
  readonly history: TimerRequest[] = [];

  async schedule(timer: TimerRequest): Promise<void> {
    this.pending.set(`${timer.runId}/${timer.timerId}`, structuredClone(timer));
    this.history.push(structuredClone(timer));
  }

  async cancel(runId: string, timerId: string): Promise<void> {
    this.pending.delete(`${runId}/${timerId}`);
  }

  /** Removes and returns the timer that fires first. */
  takeEarliest(): TimerRequest | undefined {
    let earliest: [string, TimerRequest] | undefined;
    for (const entry of this.pending) if (!earliest || entry[1].fireAt < earliest[1].fireAt) earliest = entry;
    if (!earliest) return undefined;
    this.pending.delete(earliest[0]);
    return earliest[1];
  }
}

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  constructor(public time = Date.parse("2030-01-01T00:00:00.000Z")) {}

  now(): number {
    return this.time;
  }

  advanceTo(time: number): void {
    this.time = Math.max(this.time, time);
  }
}

export interface ManualEngine {
  engine: Engine;
  store: EventStore;
  queue: RecordingQueue;
  timers: RecordingTimers;
  clock: ManualClock;
  /** Runs queued activations and steps until none are left (timers are not fired). */
  runQueued(): Promise<void>;
  /** Like `runQueued`, then fires the earliest timer at its time, and so on until no timer is left. */
  runToEnd(): Promise<void>;
  events(runId: string): Promise<WorkflowEvent[]>;
  run(runId: string): Promise<RunRecord>;
}

/**
 * The engine with recording fakes for its ports: every activation, step and timer happens when the test
 * says so. `cacheSize: 0` makes every activation replay the run from its log.
 */
export function manualEngine(
  options: {
    store?: EventStore;
    cacheSize?: number;
    inlineSteps?: boolean;
    telemetry?: TelemetryFactory;
    queueLimits?: QueueLimits;
    stepLimits?: StepLimits;
    runLimits?: RunLimits;
  } = {},
): ManualEngine {
  const store = options.store ?? new MemoryStorage();
  const queue = new RecordingQueue(options.queueLimits);
  const timers = new RecordingTimers();
  const clock = new ManualClock();
  const engine = new Engine({
    store,
    queue,
    timers,
    clock,
    ...(options.cacheSize === undefined ? {} : { cacheSize: options.cacheSize }),
    ...(options.inlineSteps === undefined ? {} : { inlineSteps: options.inlineSteps }),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
    ...(options.stepLimits === undefined ? {} : { stepLimits: options.stepLimits }),
    ...(options.runLimits === undefined ? {} : { runLimits: options.runLimits }),
  });
  const runQueued = async () => {
    for (;;) {
      const activations = queue.takeActivations();
      const steps = queue.takeSteps();
      if (activations.length === 0 && steps.length === 0) return;
      for (const task of activations) await engine.activate(task);
      for (const task of steps) await engine.executeStep(task);
    }
  };
  return {
    engine,
    store,
    queue,
    timers,
    clock,
    runQueued,
    async runToEnd() {
      for (;;) {
        await runQueued();
        const timer = timers.takeEarliest();
        if (!timer) return;
        clock.advanceTo(timer.fireAt);
        await engine.activate(timer.task);
      }
    },
    events: (runId) => store.getEvents(runId),
    async run(runId) {
      const run = await store.getRun(runId);
      if (!run) throw new Error(`no run ${runId}`);
      return run;
    },
  };
}

/** `[type, stepId, attempt]` of each step event, `[type]` of the others. */
export function eventTuples(events: readonly WorkflowEvent[]): (string | number)[][] {
  return events.map((event) =>
    "stepId" in event ? [event.type, event.stepId, event.attempt] : [event.type],
  );
}

export const types = (events: readonly WorkflowEvent[]) => events.map((event) => event.type);
