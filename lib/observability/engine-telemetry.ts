import type { EventOf, WorkflowEvent } from "../core/events.ts";
import type { StepOutcome } from "../ports/event-store.ts";
import type { ActivationTask, StepTask } from "../ports/task-queue.ts";

/** What a run waits on, as telemetry sees it (a `RunExecution`'s `waits()`). */
export type TracedWait =
  | { readonly kind: "step" }
  | { readonly kind: "sleep"; readonly sleepId: string; readonly resumeAt: number; readonly since: number }
  | { readonly kind: "hook"; readonly hookId: string; readonly eventName: string; readonly since: number }
  | {
      readonly kind: "child";
      readonly childId: string;
      readonly childRunId: string;
      readonly workflowName: string;
      readonly since: number;
    };

/** What telemetry needs to know of a run while an activation advances it (a `RunExecution`). */
export interface TracedRun {
  readonly runId: string;
  readonly definition: { readonly name: string };
  readonly started: { readonly timestamp: string; readonly traceparent?: string | undefined };
  /** Events in the stored log: 1 until the run's first activation commits (whoever started it). */
  readonly committedVersion: number;
  /** The log's last `workflow_retried`, if `retryRun` took back the run's failure. */
  readonly lastRetry: EventOf<"workflow_retried"> | undefined;
  waits(): readonly TracedWait[];
}

/** The waits of a run of one kind, by id. */
export function waitsOfKind<K extends TracedWait["kind"]>(
  run: TracedRun,
  kind: K,
  idOf: (wait: Extract<TracedWait, { kind: K }>) => string,
): Map<string, Extract<TracedWait, { kind: K }>> {
  const found = new Map<string, Extract<TracedWait, { kind: K }>>();
  for (const wait of run.waits())
    if (wait.kind === kind)
      found.set(idOf(wait as Extract<TracedWait, { kind: K }>), wait as Extract<TracedWait, { kind: K }>);
  return found;
}

/** The span of `start()`: its context becomes the run's trace context, stored in `workflow_started`. */
export interface StartSpan {
  readonly traceparent: string | undefined;
  end(created: boolean | undefined, error?: unknown): void;
}

/** The span of one activation. */
export interface ActivationSpan {
  /** Before the workflow advances: the run is known (its trace, what it waits for). */
  begin(run: TracedRun): void;
  /** The context of this activation for the tasks and child runs it sends. */
  readonly traceparent: string | undefined;
  /** After a successful commit: spans and metrics for what the new events finished, once (a replay commits nothing new). */
  committed(events: readonly WorkflowEvent[]): void;
  end(error?: unknown): void;
}

/** The hooks the engine calls for traces and metrics (see `openTelemetry`). */
export interface EngineTelemetry {
  /** True when spans and metrics are recorded (tasks then carry their send time). */
  readonly enabled: boolean;
  start(workflowName: string, runId: string, parent: string | undefined): Promise<StartSpan>;
  activation(task: ActivationTask): Promise<ActivationSpan>;
  stepAttempt(task: StepTask, attempt: () => Promise<StepOutcome>): Promise<StepOutcome>;
}

/** Makes an engine's telemetry; `now` is the engine's clock, so that span times agree with the log. */
export type TelemetryFactory = (now: () => number) => EngineTelemetry;

const NO_START: StartSpan = { traceparent: undefined, end() {} };
const NO_ACTIVATION: ActivationSpan = { traceparent: undefined, begin() {}, committed() {}, end() {} };

/** Records nothing: the engine's default, so that code which does not ask for telemetry never holds it. */
export const noTelemetry: EngineTelemetry = {
  enabled: false,
  start: async () => NO_START,
  activation: async () => NO_ACTIVATION,
  stepAttempt: (_task, attempt) => attempt(),
};
