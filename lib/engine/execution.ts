import { createHash, randomBytes } from "node:crypto";
import type { $ZodType } from "zod/v4/core";
import { runInWorkflow } from "../core/context.ts";
import { type Duration, resolveDeadline } from "../core/durations.ts";
import {
  CancelledError,
  deserializeError,
  EventPayloadError,
  ForeignAwaitError,
  NonDeterminismError,
  TimeoutError,
} from "../core/errors.ts";
import type { EventDraft, WorkflowEvent } from "../core/events.ts";
import { getLogger, type RunLogContext } from "../core/logger.ts";
import { safeParseWithMessages } from "../core/schema.ts";
import {
  argumentsForUser,
  copyForUser,
  MAX_PAYLOAD_BYTES,
  roundTrip,
  serializeError,
  stableStringify,
  toJson,
} from "../core/serialization.ts";
import type { AnyStep } from "../core/step.ts";
import { type RunTags, validateTags } from "../core/tags.ts";
import type { AnyWorkflow } from "../core/workflow.ts";
import type { LogLevel, WorkflowScope } from "../core/workflow-scope.ts";
import type { RunStatus } from "../ports/event-store.ts";
import { continuationRunIdOf } from "./continuation.ts";

/** A step the workflow waits for. */
export interface PendingStep {
  stepId: string;
  stepName: string;
  definition: AnyStep;
  input: unknown[];
  attempt: number;
  /** The seq of attempt `attempt`'s `step_started` event (its task's `issueSeq`). */
  startedSeq: number;
  /** `running`: attempt `attempt` is out with an executor; `retry_wait`: waiting until `retryAt`. */
  state: "running" | "retry_wait";
  retryAt?: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export interface PendingSleep {
  sleepId: string;
  resumeAt: number;
  /** When the workflow began to wait (the log's time, the same on replay), for telemetry. */
  since: number;
  resolve(): void;
  reject(error: Error): void;
}

/** A `waitForEvent` or webhook the workflow waits on. */
export interface PendingHook {
  hookId: string;
  eventName: string;
  timeoutAt: number | undefined;
  schema: $ZodType | undefined;
  /** When the workflow began to wait (the log's time, the same on replay), for telemetry. */
  since: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** A child run the workflow waits on. */
export interface PendingChild {
  childId: string;
  childRunId: string;
  workflowName: string;
  input: unknown[];
  /** When the workflow began to wait (the log's time, the same on replay), for telemetry. */
  since: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** A command the workflow code issues, checked against the log on replay. */
interface CommandRef {
  kind: "step" | "sleep" | "hook" | "child";
  id: string;
}

const describeRef = (ref: CommandRef) => {
  const name = ref.id.split("#")[0];
  if (ref.kind === "step") return `step "${name}" (${ref.id})`;
  if (ref.kind === "hook") return `waitForEvent("${name}") (${ref.id})`;
  if (ref.kind === "child") return `child workflow "${name}" (${ref.id})`;
  return `sleep (${ref.id})`;
};

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

let draining: Promise<void> | undefined;

/**
 * Lets every promise continuation that can run, run: the workflow is then waiting on tsworkflow alone.
 * Only a turn of the event loop says that the microtask queue is empty (a workflow may await its own
 * promises any number of times before its next call), so no direct call can replace it; the runs that
 * ask within one turn share one `setImmediate`.
 */
function drain(): Promise<void> {
  draining ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      draining = undefined;
      resolve();
    }),
  );
  return draining;
}

/**
 * One run's workflow function, live in memory, driven by its event log. The same `apply` drives a
 * replay of recorded events and the delivery of new ones, so a warm run and a replayed run behave alike.
 */
export class RunExecution implements WorkflowScope {
  readonly pendingSteps = new Map<string, PendingStep>();
  readonly pendingSleeps = new Map<string, PendingSleep>();
  readonly pendingHooks = new Map<string, PendingHook>();
  readonly pendingChildren = new Map<string, PendingChild>();
  /** Ids of the `sendEvent` deliveries already in the log: each is used once. */
  readonly consumedSignals = new Set<string>();
  /** Events in the log, including the ones appended and not yet committed. */
  version = 0;
  /** Events in the stored log: the `expectedVersion` of the next commit. */
  committedVersion = 0;
  /** The run's status as of the last commit. */
  status: RunStatus = "pending";
  /** Events appended since the last commit. */
  newEvents: WorkflowEvent[] = [];
  settled: Settled | undefined;
  /** Set when the code stopped matching the log. */
  nonDeterminism: NonDeterminismError | undefined;
  /** The absolute deadline from `maxDuration`, if any. */
  deadline: number | undefined;
  /** The reason, once the run has been asked to cancel. */
  cancelRequested: string | undefined;

  private readonly counters = new Map<string, number>();
  private recordedCommands: CommandRef[] = [];
  /** The event number (`seq`) of each recorded command, to say where a replay parted from the log. */
  private readonly recordedCommandSeqs: number[] = [];
  /** The event number at which the code and the log parted (see `nonDeterminism`). */
  mismatchSeq: number | undefined;
  private issuedCommands = 0;
  private commandsInLog = 0;
  private recordedLogs = 0;
  private issuedLogs = 0;
  private recordedTagSets = 0;
  private issuedTagSets = 0;
  /** The run's tags as the log has them so far (those of `start()`, then each `setTags()`). */
  tags: RunTags = {};
  /** The patches whose new branch the log says this run took (`patch_applied`). */
  private readonly recordedPatches = new Set<string>();
  /** What `patched()` answered in this run so far: the same answer every time for one patch. */
  private readonly patchDecisions = new Map<string, boolean>();
  /** Events a replay decided to add (a patch taken at the end of the log): appended once it is done. */
  private deferred: EventDraft[] = [];
  /** Set by `continueAsNew()`: the input of the run that goes on. */
  continuation: { input: unknown[] } | undefined;
  private atFrontier = true;
  private time: number;
  private randomState: number;
  private now: () => number;
  /** The store's payload limit (see `EventStore.limits`). */
  private maxPayloadBytes = MAX_PAYLOAD_BYTES;

  private constructor(
    readonly definition: AnyWorkflow,
    readonly started: Extract<WorkflowEvent, { type: "workflow_started" }>,
    clock: () => number,
  ) {
    this.now = clock;
    this.time = Date.parse(started.timestamp);
    this.deadline = started.deadline;
    this.randomState = seedOf(started.runId);
    this.tags = { ...started.tags };
  }

  get runId(): string {
    return this.started.runId;
  }

  /** Rebuilds a run's live workflow from its log. */
  static async replay(
    definition: AnyWorkflow,
    events: readonly WorkflowEvent[],
    clock: () => number,
    maxPayloadBytes = MAX_PAYLOAD_BYTES,
  ): Promise<RunExecution> {
    const [first] = events;
    if (first?.type !== "workflow_started") {
      throw new NonDeterminismError(`The log of this run does not begin with workflow_started`);
    }
    const execution = new RunExecution(definition, first, clock);
    execution.maxPayloadBytes = maxPayloadBytes;
    execution.version = 1;
    for (const event of events) {
      const ref = commandOf(event);
      if (ref) {
        execution.recordedCommands.push(ref);
        execution.recordedCommandSeqs.push(event.seq);
      }
      if (event.type === "step_started" && event.attempt === 1)
        execution.recordedInputs.set(`step:${event.stepId}`, event.input);
      if (event.type === "child_started") execution.recordedInputs.set(`child:${event.childId}`, event.input);
      if (event.type === "sleep_created") execution.recordedResumeAt.set(event.sleepId, event.resumeAt);
      if (event.type === "hook_created") execution.recordedHooks.set(event.hookId, event);
      if (event.type.startsWith("log_")) execution.recordedLogs += 1;
      if (event.type === "tags_set") {
        execution.recordedTagSets += 1;
        execution.tags = { ...execution.tags, ...event.tags };
      }
      if (event.type === "patch_applied") execution.recordedPatches.add(event.patchId);
    }
    // Failures that a later `workflow_retried` took back are not replayed: those steps run again.
    const retried = new Set(
      events.flatMap((event) => (event.type === "workflow_retried" ? event.retriedFailures : [])),
    );
    // While replaying, every command must already be in the log; only a fresh run issues new ones.
    execution.atFrontier = events.length === 1;
    await execution.begin();
    for (const event of events.slice(1)) {
      if (execution.nonDeterminism) break;
      execution.version = event.seq;
      if (retried.has(event.seq)) continue;
      const applying = execution.apply(event);
      if (applying) await applying;
    }
    execution.atFrontier = true;
    if (!execution.nonDeterminism) for (const draft of execution.deferred) execution.append(draft);
    execution.deferred = [];
    execution.committedVersion = events.length;
    return execution;
  }

  /** Starts the workflow function and runs it until it waits on tsworkflow. */
  private async begin(): Promise<void> {
    const promise = runInWorkflow(this, () =>
      Promise.resolve().then(() => this.definition.fn(...argumentsForUser(this.started.input))),
    );
    promise.then(
      (value) => {
        this.settled = { ok: true, value };
      },
      (error: unknown) => {
        this.settled = { ok: false, error };
      },
    );
    await drain();
  }

  /** The new events are in the stored log now. */
  markCommitted(status: RunStatus): void {
    this.status = status;
    this.committedVersion = this.version;
    this.newEvents = [];
  }

  /** Appends a new event at the current time and applies it. */
  async deliver(draft: EventDraft): Promise<WorkflowEvent> {
    const event = this.append(draft);
    const applying = this.apply(event);
    if (applying) await applying;
    return event;
  }

  /** Appends an event without applying it (for events the engine alone cares about). */
  append(draft: EventDraft): WorkflowEvent {
    const now = this.now();
    this.time = now;
    this.version += 1;
    const event = {
      ...draft,
      runId: this.runId,
      seq: this.version,
      timestamp: new Date(now).toISOString(),
    } as WorkflowEvent;
    this.newEvents.push(event);
    return event;
  }

  /**
   * Applies one event of the log to the live workflow; returns the drain to wait for when the event woke the
   * workflow (not an async function: an event that wakes nothing costs no promise).
   */
  private apply(event: WorkflowEvent): Promise<void> | undefined {
    this.time = Date.parse(event.timestamp);
    switch (event.type) {
      case "step_started": {
        if (event.attempt === 1) return this.checkCommandIssued(event);
        const pending = this.pendingSteps.get(event.stepId);
        if (!pending)
          return this.mismatch(
            `The log retries step "${event.stepName}" (${event.stepId}) but the workflow does not wait for it`,
          );
        pending.attempt = event.attempt;
        pending.startedSeq = event.seq;
        pending.state = "running";
        pending.retryAt = undefined;
        return;
      }
      case "sleep_created":
      case "hook_created":
      case "child_started":
        return this.checkCommandIssued(event);
      case "hook_received":
      case "hook_timed_out": {
        if (event.type === "hook_received") this.consumedSignals.add(event.signalId);
        const pending = this.pendingHooks.get(event.hookId);
        if (!pending) {
          return this.mismatch(
            `The log delivers event "${event.eventName}" (${event.hookId}) but the workflow does not wait for it`,
          );
        }
        this.pendingHooks.delete(event.hookId);
        if (event.type === "hook_timed_out") {
          const at = new Date(pending.timeoutAt ?? 0).toISOString();
          pending.reject(
            new TimeoutError(`waitForEvent("${event.eventName}") timed out: no event arrived before ${at}.`),
          );
        } else if (pending.schema) {
          const parsed = safeParseWithMessages(pending.schema, event.payload);
          if (parsed.success) pending.resolve(parsed.data);
          else pending.reject(new EventPayloadError(event.eventName, parsed.error.issues));
        } else {
          pending.resolve(copyForUser(event.payload));
        }
        return drain();
      }
      case "child_completed":
      case "child_failed": {
        const pending = this.pendingChildren.get(event.childId);
        if (!pending) {
          return this.mismatch(
            `The log has a result for child run ${event.childRunId} (${event.childId}) but the workflow did not start it`,
          );
        }
        this.pendingChildren.delete(event.childId);
        if (event.type === "child_completed") pending.resolve(copyForUser(event.result));
        else pending.reject(deserializeError(event.error));
        return drain();
      }
      case "step_retrying": {
        const pending = this.pendingSteps.get(event.stepId);
        if (!pending)
          return this.mismatch(
            `The log retries step "${event.stepName}" (${event.stepId}) but the workflow does not wait for it`,
          );
        pending.state = "retry_wait";
        pending.retryAt = event.retryAt;
        return;
      }
      case "step_completed":
      case "step_failed": {
        const pending = this.pendingSteps.get(event.stepId);
        if (!pending) {
          return this.mismatch(
            `The log has a result for step "${event.stepName}" (${event.stepId}) but the workflow did not call it`,
          );
        }
        this.pendingSteps.delete(event.stepId);
        if (event.type === "step_completed") pending.resolve(copyForUser(event.result));
        else pending.reject(deserializeError(event.error));
        return drain();
      }
      case "cancel_requested": {
        this.cancelRequested = event.reason;
        const error = () => new CancelledError(`Run ${this.runId} was cancelled: ${event.reason}`);
        // The engine cancels the children; here every wait of this run ends with CancelledError.
        const waits = [
          ...this.pendingSteps.values(),
          ...this.pendingSleeps.values(),
          ...this.pendingHooks.values(),
          ...this.pendingChildren.values(),
        ];
        this.pendingSteps.clear();
        this.pendingSleeps.clear();
        this.pendingHooks.clear();
        this.pendingChildren.clear();
        for (const wait of waits) wait.reject(error());
        return drain();
      }
      case "sleep_completed": {
        const pending = this.pendingSleeps.get(event.sleepId);
        if (!pending)
          return this.mismatch(`The log completes ${event.sleepId} but the workflow is not sleeping there`);
        this.pendingSleeps.delete(event.sleepId);
        pending.resolve();
        return drain();
      }
      default:
        return;
    }
  }

  private checkCommandIssued(event: WorkflowEvent): undefined {
    this.commandsInLog += 1;
    if (this.issuedCommands < this.commandsInLog) {
      const ref = commandOf(event) as CommandRef;
      this.mismatch(
        `The log has ${describeRef(ref)} at event ${event.seq} but the workflow did not call it`,
        event.seq,
      );
    }
    return undefined;
  }

  private mismatch(message: string, seq = this.version): undefined {
    if (this.nonDeterminism) return undefined;
    this.nonDeterminism = new NonDeterminismError(message);
    this.mismatchSeq = seq;
    return undefined;
  }

  /** Issues a command: matched against the log when replaying, appended when new. False on a mismatch. */
  /** @returns the seq of the command's event, or undefined when the log and the code disagree */
  private issue(ref: CommandRef, draft: () => EventDraft): number | undefined {
    const index = this.issuedCommands;
    this.issuedCommands += 1;
    const recorded = this.recordedCommands[index];
    if (recorded) {
      if (recorded.kind !== ref.kind || recorded.id !== ref.id) {
        this.mismatch(
          `The log has ${describeRef(recorded)} as call ${index + 1} but the workflow now calls ${describeRef(ref)}`,
          this.recordedCommandSeqs[index],
        );
        return undefined;
      }
      return this.recordedCommandSeqs[index];
    }
    if (!this.atFrontier) {
      this.mismatch(`The workflow calls ${describeRef(ref)}, which is not in the log`);
      return undefined;
    }
    const { seq } = this.append(draft());
    this.commandsInLog += 1;
    return seq;
  }

  private nextId(name: string): string {
    const count = this.counters.get(name) ?? 0;
    this.counters.set(name, count + 1);
    return `${name}#${count}`;
  }

  /**
   * The input a replayed command was recorded with, when the code passes the same now; a mismatch stops the
   * run (a recorded result must never be reused for other arguments). Undefined for a new command.
   */
  private recordedInput(ref: CommandRef, json: string): unknown[] | undefined {
    const key = `${ref.kind}:${ref.id}`;
    const recorded = this.recordedInputs.get(key);
    this.recordedInputs.delete(key);
    if (recorded === undefined || sameJson(json, recorded)) return recorded;
    this.mismatch(
      `The log has ${describeRef(ref)} called with ${shorten(JSON.stringify(recorded))} but the workflow now calls it with ${shorten(json)}`,
    );
    return undefined;
  }

  /** Called by a step function inside this workflow. */
  callStep(definition: AnyStep, args: unknown[]): Promise<unknown> {
    const stepId = this.nextId(definition.stepName);
    return new Promise((resolve, reject) => {
      let json: string;
      try {
        json = toJson(args, `The input of step "${definition.stepName}" (${stepId})`, this.maxPayloadBytes);
      } catch (error) {
        reject(error);
        return;
      }
      const ref: CommandRef = { kind: "step", id: stepId };
      // One parsed copy for the event and the attempts: neither is changed, and the step gets its own.
      let parsed: unknown[] | undefined;
      const issued = this.issue(ref, () => {
        parsed = JSON.parse(json) as unknown[];
        return { type: "step_started", stepId, stepName: definition.stepName, attempt: 1, input: parsed };
      });
      if (!issued) return;
      // A replayed step keeps its recorded input: an attempt sent again runs with what the log says.
      const input = this.recordedInput(ref, json) ?? parsed ?? (JSON.parse(json) as unknown[]);
      if (this.nonDeterminism) return;
      this.pendingSteps.set(stepId, {
        stepId,
        stepName: definition.stepName,
        definition,
        input,
        attempt: 1,
        startedSeq: issued,
        state: "running",
        resolve,
        reject,
      });
    });
  }

  /** Called by `sleep()` inside this workflow. */
  callSleep(duration: Duration): Promise<void> {
    const sleepId = this.nextId("sleep");
    return new Promise((resolve, reject) => {
      // A new sleep counts from now; a replayed one keeps the resume time in its log.
      const now = this.now();
      let resumeAt: number;
      try {
        resumeAt = this.recordedResumeAt.get(sleepId) ?? resolveDeadline(duration, now);
      } catch (error) {
        reject(error);
        return;
      }
      const issued = this.issue({ kind: "sleep", id: sleepId }, () => ({
        type: "sleep_created",
        sleepId,
        durationMs: Math.max(0, resumeAt - now),
        resumeAt,
      }));
      if (issued) this.pendingSleeps.set(sleepId, { sleepId, resumeAt, since: this.time, resolve, reject });
    });
  }

  private readonly recordedResumeAt = new Map<string, number>();
  /** Inputs of the steps (`step:<id>`) and child runs (`child:<id>`) the log has, to check replayed calls. */
  private readonly recordedInputs = new Map<string, unknown[]>();
  private readonly recordedHooks = new Map<string, Extract<WorkflowEvent, { type: "hook_created" }>>();

  /** Called by `waitForEvent()` and `createWebhook()` inside this workflow. */
  callHook(
    eventName: string,
    options: { timeout?: Duration | undefined; schema?: $ZodType | undefined; webhook?: boolean },
  ): { promise: Promise<unknown>; token: string | undefined } {
    const hookId = this.nextId(eventName);
    const recorded = this.recordedHooks.get(hookId);
    // A new webhook gets a random token; a replayed one keeps the token in its log.
    const token = options.webhook
      ? (recorded?.token ?? `${this.runId}.${randomBytes(18).toString("base64url")}`)
      : undefined;
    const promise = new Promise<unknown>((resolve, reject) => {
      let timeoutAt: number | undefined;
      try {
        if (recorded) timeoutAt = recorded.timeoutAt;
        else if (options.timeout !== undefined) timeoutAt = resolveDeadline(options.timeout, this.now());
      } catch (error) {
        reject(error);
        return;
      }
      const issued = this.issue({ kind: "hook", id: hookId }, () => ({
        type: "hook_created",
        hookId,
        eventName,
        ...(timeoutAt === undefined ? {} : { timeoutAt }),
        ...(token === undefined ? {} : { token }),
      }));
      if (issued)
        this.pendingHooks.set(hookId, {
          hookId,
          eventName,
          timeoutAt,
          schema: options.schema,
          since: this.time,
          resolve,
          reject,
        });
    });
    return { promise, token };
  }

  private webhooks = 0;

  /** The place of the next `createWebhook()` of this run: 0, 1, 2… in call order, the same on replay. */
  nextWebhookIndex(): number {
    this.webhooks += 1;
    return this.webhooks - 1;
  }

  /** Called by `runChild()` inside this workflow. */
  callChild(definition: AnyWorkflow, args: unknown[]): Promise<unknown> {
    const childId = this.nextId(definition.name);
    return new Promise((resolve, reject) => {
      let json: string;
      try {
        json = toJson(
          args,
          `The input of child workflow "${definition.name}" (${childId})`,
          this.maxPayloadBytes,
        );
      } catch (error) {
        reject(error);
        return;
      }
      const childRunId = childRunIdOf(this.runId, childId);
      const ref: CommandRef = { kind: "child", id: childId };
      const issued = this.issue(ref, () => ({
        type: "child_started",
        childId,
        childRunId,
        workflowName: definition.name,
        input: JSON.parse(json) as unknown[],
      }));
      const input = issued ? (this.recordedInput(ref, json) ?? (JSON.parse(json) as unknown[])) : undefined;
      if (input && !this.nonDeterminism) {
        const pending = {
          childId,
          childRunId,
          workflowName: definition.name,
          input,
          since: this.time,
          resolve,
          reject,
        };
        this.pendingChildren.set(childId, pending);
      }
    });
  }

  /** Called by `log.*` inside this workflow: written to the log and the logger once, not again on replay. */
  callLog(level: LogLevel, message: string, data?: unknown): void {
    const index = this.issuedLogs;
    this.issuedLogs += 1;
    if (index < this.recordedLogs) return;
    const safeData =
      data === undefined
        ? undefined
        : roundTrip(data, `The data of log message "${message}"`, this.maxPayloadBytes);
    this.append({
      type: `log_${level}`,
      message,
      ...(safeData === undefined ? {} : { data: safeData }),
    } as EventDraft);
    const context: RunLogContext = { runId: this.runId, workflowName: this.definition.name };
    const logger = getLogger();
    const extra = safeData === undefined ? context : { ...context, data: safeData };
    if (level === "warning") logger.warn(message, extra);
    else logger[level](message, extra);
  }

  /** Called by `setTags()` inside this workflow: recorded once, not again on replay. */
  callSetTags(tags: RunTags): void {
    const valid = validateTags(tags, `run ${this.runId}`);
    const index = this.issuedTagSets;
    this.issuedTagSets += 1;
    if (index < this.recordedTagSets) return;
    const merged = { ...this.tags, ...valid };
    validateTags(merged, `run ${this.runId}`);
    this.tags = merged;
    this.append({ type: "tags_set", tags: valid });
  }

  /**
   * `patched(patchId)`: a run whose log has calls beyond this point went past it with the old code and
   * replays the old branch; any other run takes the new one, and the log records it.
   */
  callPatched(patchId: string): boolean {
    const decided = this.patchDecisions.get(patchId);
    if (decided !== undefined) return decided;
    const takesNew = this.recordedPatches.has(patchId) || !this.passedWithOldCode();
    if (takesNew) this.recordPatch(patchId);
    this.patchDecisions.set(patchId, takesNew);
    return takesNew;
  }

  /** `deprecatePatch(patchId)`: only the new branch is left; a run that reaches it records it as `patched` would. */
  callDeprecatePatch(patchId: string): void {
    this.callPatched(patchId);
  }

  /** True while replaying calls the log recorded after this point: the run got here before the change. */
  private passedWithOldCode(): boolean {
    return this.issuedCommands < this.recordedCommands.length;
  }

  private recordPatch(patchId: string): void {
    if (this.recordedPatches.has(patchId)) return;
    this.recordedPatches.add(patchId);
    const draft: EventDraft = { type: "patch_applied", patchId };
    // Reached while replaying the log's last event: added once the replay is done, after the last seq.
    if (this.atFrontier) this.append(draft);
    else this.deferred.push(draft);
  }

  /** `continueAsNew(...args)`: the first call wins; the run ends as soon as the workflow waits. */
  callContinueAsNew(args: unknown[]): void {
    if (this.continuation) return;
    const json = toJson(args, `The input of continueAsNew() in run ${this.runId}`, this.maxPayloadBytes);
    this.continuation = { input: JSON.parse(json) as unknown[] };
  }

  /** Replay-safe current time: the time of the event the workflow is reacting to. */
  currentTime(): number {
    return this.time;
  }

  /** Replay-safe random number in [0, 1), seeded by the run id. */
  random(): number {
    // mulberry32
    this.randomState = (this.randomState + 0x6d2b79f5) | 0;
    let t = this.randomState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  private waitsForNothing(): boolean {
    return (
      this.pendingSteps.size +
        this.pendingSleeps.size +
        this.pendingHooks.size +
        this.pendingChildren.size ===
      0
    );
  }

  /** The workflow's outcome as a log event, once it has one. */
  terminalDraft(): EventDraft | undefined {
    if (this.nonDeterminism) return { type: "workflow_failed", error: serializeError(this.nonDeterminism) };
    if (this.continuation) {
      // Cancelled meanwhile: the chain ends here rather than going on in a new run.
      if (this.cancelRequested !== undefined)
        return { type: "workflow_cancelled", reason: this.cancelRequested };
      return {
        type: "workflow_continued_as_new",
        input: this.continuation.input,
        continuedAs: continuationRunIdOf(this.runId),
      };
    }
    if (!this.settled) {
      // Unsettled and waiting for nothing tsworkflow knows: no event can ever wake it.
      if (this.waitsForNothing())
        return {
          type: "workflow_failed",
          error: serializeError(new ForeignAwaitError(this.definition.name)),
        };
      return undefined;
    }
    if (
      !this.settled.ok &&
      this.cancelRequested !== undefined &&
      this.settled.error instanceof CancelledError
    ) {
      return { type: "workflow_cancelled", reason: this.cancelRequested };
    }
    if (!this.settled.ok) return { type: "workflow_failed", error: serializeError(this.settled.error) };
    let result: unknown;
    try {
      result = roundTrip(
        this.settled.value,
        `The result of workflow "${this.definition.name}"`,
        this.maxPayloadBytes,
      );
    } catch (error) {
      // A result the log cannot hold fails the run: thrown from here, it would retry the activation forever.
      return { type: "workflow_failed", error: serializeError(error) };
    }
    return { type: "workflow_completed", result };
  }
}

/** Equal JSON, whatever order a store gave the object keys back in. */
function sameJson(json: string, recorded: unknown): boolean {
  return json === JSON.stringify(recorded) || stableStringify(JSON.parse(json)) === stableStringify(recorded);
}

/** At most 200 characters of a value's JSON, for messages. */
function shorten(json: string): string {
  return json.length <= 200 ? json : `${json.slice(0, 197)}...`;
}

function commandOf(event: WorkflowEvent): CommandRef | undefined {
  if (event.type === "step_started" && event.attempt === 1) return { kind: "step", id: event.stepId };
  if (event.type === "sleep_created") return { kind: "sleep", id: event.sleepId };
  if (event.type === "hook_created") return { kind: "hook", id: event.hookId };
  if (event.type === "child_started") return { kind: "child", id: event.childId };
  return undefined;
}

/** A child's run id follows from its parent's and its place there, so starting it twice is harmless. */
export function childRunIdOf(parentRunId: string, childId: string): string {
  const digest = createHash("sha256").update(`${parentRunId}\u0000${childId}`).digest("hex").slice(0, 24);
  return `child_${digest}`;
}

function seedOf(text: string): number {
  let hash = 2166136261;
  for (let index = 0; index < text.length; index += 1)
    hash = Math.imul(hash ^ text.charCodeAt(index), 16777619);
  return hash | 0;
}
