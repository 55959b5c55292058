import { randomBytes } from "node:crypto";
import type { $ZodType } from "zod/v4/core";
import { runInWorkflow } from "../core/context.ts";
import { type Duration, resolveDeadline } from "../core/durations.ts";
import {
  CancelledError,
  deserializeError,
  EventPayloadError,
  ForeignAwaitError,
  NonDeterminismError,
  type SerializedError,
  TimeoutError,
} from "../core/errors.ts";
import type { EventDraft, EventOf, WorkflowEvent } from "../core/events.ts";
import { sha256 } from "../core/hash.ts";
import { getLogger, type RunLogContext } from "../core/logger.ts";
import { optional } from "../core/optional.ts";
import { safeParseWithMessages } from "../core/schema.ts";
import {
  MAX_PAYLOAD_BYTES,
  roundTrip,
  serializeError,
  stableStringify,
  toJson,
} from "../core/serialization.ts";
import type { AnyStep } from "../core/step.ts";
import { type RunTags, validateTags } from "../core/tags.ts";
import { type AnyWorkflow, validateWorkflowInput } from "../core/workflow.ts";
import type { LogLevel, WorkflowScope } from "../core/workflow-scope.ts";
import type { RunStatus } from "../ports/event-store.ts";
import { continuationRunIdOf } from "./continuation.ts";
import { iso } from "./waits/wait-kind.ts";

/** How a wait ends: the workflow's promise. */
interface Settle<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/** A step the workflow waits for. */
export interface StepWait {
  readonly kind: "step";
  stepId: string;
  stepName: string;
  definition: AnyStep;
  input: unknown[];
  attempt: number;
  /** The seq of attempt `attempt`'s `step_started` event (its task's `issueSeq`). */
  startedSeq: number;
  /** `running`: attempt `attempt` is out with an executor; `retry_wait`: waiting until `retryAt`. */
  state: "running" | "retry_wait";
  retryAt?: number | undefined;
}

/** A `sleep()` the workflow waits on. */
export interface SleepWait {
  readonly kind: "sleep";
  sleepId: string;
  resumeAt: number;
  /** When the workflow began to wait (the log's time, the same on replay), for telemetry. */
  since: number;
}

/** A `waitForEvent` or webhook the workflow waits on. */
export interface HookWait {
  readonly kind: "hook";
  hookId: string;
  eventName: string;
  timeoutAt: number | undefined;
  schema: $ZodType | undefined;
  /** When the workflow began to wait (the log's time, the same on replay), for telemetry. */
  since: number;
}

/** A child run the workflow waits on. */
export interface ChildWait {
  readonly kind: "child";
  childId: string;
  childRunId: string;
  workflowName: string;
  input: unknown[];
  /** When the workflow began to wait (the log's time, the same on replay), for telemetry. */
  since: number;
}

/** What a run waits on: the engine reads these (see `RunExecution.waits`) and never changes them. */
export type Wait = StepWait | SleepWait | HookWait | ChildWait;
export type WaitKind = Wait["kind"];
type WaitOf<K extends WaitKind> = Extract<Wait, { kind: K }>;

/** A command the workflow code issues, checked against the log on replay. */
export interface CommandRef {
  kind: "step" | "sleep" | "hook" | "child";
  id: string;
}

export const describeRef = (ref: CommandRef) => {
  const name = ref.id.split("#")[0];
  if (ref.kind === "step") return `step "${name}" (${ref.id})`;
  if (ref.kind === "hook") return `waitForEvent("${name}") (${ref.id})`;
  if (ref.kind === "child") return `child workflow "${name}" (${ref.id})`;
  return `sleep (${ref.id})`;
};

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** The engine-visible state of a run's execution, as its transitions write it. */
interface OwnState {
  version: number;
  committedVersion: number;
  lastRetry: EventOf<"workflow_retried"> | undefined;
  status: RunStatus;
  newEvents: WorkflowEvent[];
  nonDeterminism: NonDeterminismError | undefined;
  mismatchSeq: number | undefined;
  cancelRequested: string | undefined;
  tags: RunTags;
  deadline: number | undefined;
}

/** Options of {@link RunExecution.replay}. */
export interface ReplayOptions {
  /** The time of the activation (the events a fresh run appends are stamped with it). */
  now: number;
  /** The run's stored status. @default "pending" */
  status?: RunStatus;
  /** The store's payload limit. @default MAX_PAYLOAD_BYTES */
  maxPayloadBytes?: number;
}

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
  // What the workflow waits on, one map per kind (see `waits()`): only `apply` and the `call*` commands change them.
  private readonly steps = new Map<string, StepWait & Settle<unknown>>();
  private readonly sleeps = new Map<string, SleepWait & Settle<void>>();
  private readonly hooks = new Map<string, HookWait & Settle<unknown>>();
  private readonly children = new Map<string, ChildWait & Settle<unknown>>();
  private readonly waitMaps: Record<WaitKind, Map<string, Wait & Settle<never>>> = {
    step: this.steps,
    sleep: this.sleeps,
    hook: this.hooks,
    child: this.children,
  };
  /** Ids of the `sendEvent` deliveries already in the log: each is used once. */
  private readonly consumedSignals = new Set<string>();
  /** Events in the log, including the ones appended and not yet committed. */
  readonly version: number = 0;
  /** Events in the stored log: the `expectedVersion` of the next commit. */
  readonly committedVersion: number = 0;
  /**
   * The log's last `workflow_retried` (see `TracedRun`). Declared, not initialised: set on retried runs
   * only, it costs the Lambda bundle no class field.
   */
  declare readonly lastRetry: EventOf<"workflow_retried"> | undefined;
  /** The run's status as of the last commit. */
  readonly status: RunStatus = "pending";
  /** Events appended since the last commit. */
  readonly newEvents: readonly WorkflowEvent[] = [];
  /** Set when the code stopped matching the log. */
  readonly nonDeterminism: NonDeterminismError | undefined;
  /** The event number at which the code and the log parted (see `nonDeterminism`). */
  readonly mismatchSeq: number | undefined;
  /** The reason, once the run has been asked to cancel. */
  readonly cancelRequested: string | undefined;
  /** The run's tags as the log has them so far (those of `start()`, then each `setTags()`). */
  readonly tags: RunTags = {};
  /** How the workflow function ended, once it has (the replay checker reports an error it threw). @internal */
  settled: Settled | undefined;
  /**
   * The absolute deadline from `maxDuration`, if any: `maxDuration` after the activation that let the run in
   * (its first: after a wait for its concurrency slot or its rate limit's start, if it had one), and again after
   * the one that let it go on after a retry. A log written before `maxDurationMs` was recorded holds the
   * deadline itself, counted from `start()`, and keeps it.
   */
  declare readonly deadline: number | undefined;

  private readonly counters = new Map<string, number>();
  private recordedCommands: CommandRef[] = [];
  /** The event number (`seq`) of each recorded command, to say where a replay parted from the log. */
  private readonly recordedCommandSeqs: number[] = [];
  private issuedCommands = 0;
  private commandsInLog = 0;
  private recordedLogs = 0;
  private issuedLogs = 0;
  private recordedTagSets = 0;
  private issuedTagSets = 0;
  /** The patches whose new branch the log says this run took (`patch_applied`). */
  private readonly recordedPatches = new Set<string>();
  /** What `patched()` answered in this run so far: the same answer every time for one patch. */
  private readonly patchDecisions = new Map<string, boolean>();
  /** Events a replay decided to add (a patch taken at the end of the log): appended once it is done. */
  private deferred: EventDraft[] = [];
  /** Set by `continueAsNew()`: the input of the run that goes on. */
  private continuation: { input: unknown[] } | undefined;
  private atFrontier = true;
  private time: number;
  private randomState: number;
  /** The time of the activation at hand: new events are stamped with it and new sleeps count from it. */
  private now: number;
  /** The store's payload limit (see `EventStore.limits`). */
  private maxPayloadBytes = MAX_PAYLOAD_BYTES;

  private constructor(
    readonly definition: AnyWorkflow,
    readonly started: Extract<WorkflowEvent, { type: "workflow_started" }>,
    now: number,
  ) {
    this.now = now;
    this.time = Date.parse(started.timestamp);
    this.randomState = seedOf(started.runId);
    this.own.tags = { ...started.tags };
  }

  get runId(): string {
    return this.started.runId;
  }

  /**
   * The state the engine reads (`version`, `status`, `newEvents`…) is readonly outside this class; only the
   * transitions below write it, through this view.
   */
  private get own(): OwnState {
    return this as unknown as OwnState;
  }

  /** True once the workflow function has returned or thrown, or stopped matching its log: nothing more can be delivered. */
  get stopped(): boolean {
    return this.settled !== undefined || this.nonDeterminism !== undefined;
  }

  /** What the workflow waits on now: sleeps, steps, events and child runs, each in the order it began. */
  waits(): Wait[] {
    return [
      ...this.sleeps.values(),
      ...this.steps.values(),
      ...this.hooks.values(),
      ...this.children.values(),
    ];
  }

  /** The wait of one kind with this id, if the workflow waits on it. */
  waitOf<K extends WaitKind>(kind: K, id: string): WaitOf<K> | undefined {
    return this.waitMaps[kind].get(id) as WaitOf<K> | undefined;
  }

  /** True when the log has already delivered this `sendEvent` delivery to a wait. */
  hasConsumed(signalId: string): boolean {
    return this.consumedSignals.has(signalId);
  }

  /**
   * Rebuilds a run's live workflow from its log.
   * @param now the time of the activation (stamps the events a fresh run appends)
   * @param status the run's stored status
   */
  static async replay(
    definition: AnyWorkflow,
    events: readonly WorkflowEvent[],
    { now, status = "pending", maxPayloadBytes = MAX_PAYLOAD_BYTES }: ReplayOptions,
  ): Promise<RunExecution> {
    const [first] = events;
    if (first?.type !== "workflow_started") {
      throw new NonDeterminismError(`The log of this run does not begin with workflow_started`);
    }
    const execution = new RunExecution(definition, first, now);
    execution.maxPayloadBytes = maxPayloadBytes;
    execution.own.status = status;
    execution.own.version = 1;
    // Failures that a later `workflow_retried` took back are not replayed: those steps run again.
    const retried = new Set<number>();
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
        execution.own.tags = { ...execution.own.tags, ...event.tags };
      }
      if (event.type === "patch_applied") execution.recordedPatches.add(event.patchId);
      if (event.type === "workflow_retried") {
        execution.own.lastRetry = event;
        for (const seq of event.retriedFailures) retried.add(seq);
      }
    }
    // While replaying, every command must already be in the log; only a fresh run issues new ones.
    execution.atFrontier = events.length === 1;
    await execution.begin();
    for (const event of events.slice(1)) {
      if (execution.nonDeterminism) break;
      execution.own.version = event.seq;
      if (retried.has(event.seq)) continue;
      const applying = execution.apply(event);
      if (applying) await applying;
    }
    execution.atFrontier = true;
    // A replay that stopped at a mismatch appends (the failure) after the whole log, not where it stopped.
    if (execution.nonDeterminism) execution.own.version = events.length;
    if (!execution.nonDeterminism) for (const draft of execution.deferred) execution.append(draft);
    execution.deferred = [];
    execution.own.committedVersion = events.length;
    // The first event after the run's start, or after its last retry: logged by the activation that let it in.
    const letIn = events[execution.lastRetry?.seq ?? 1];
    const { maxDurationMs } = first;
    execution.own.deadline =
      maxDurationMs === undefined
        ? first.deadline
        : (letIn ? Date.parse(letIn.timestamp) : now) + maxDurationMs;
    return execution;
  }

  /** An activation begins at `now` (the engine's clock): what it appends is stamped with that time. */
  resumeAt(now: number): void {
    this.now = now;
  }

  /** Starts the workflow function and runs it until it waits on tsworkflow. */
  private async begin(): Promise<void> {
    const promise = runInWorkflow(this, () =>
      Promise.resolve().then(() => this.definition.fn(...structuredClone(this.started.input))),
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
    this.own.status = status;
    this.own.committedVersion = this.own.version;
    this.own.newEvents = [];
  }

  /** Drops the events appended since the last commit: the store cannot take them, and the run fails instead. */
  discard(): void {
    this.own.version = this.committedVersion;
    this.own.newEvents = [];
  }

  /** Appends a new event at the current time and applies it. */
  async deliver(draft: EventDraft): Promise<WorkflowEvent> {
    const event = this.append(draft);
    const applying = this.apply(event);
    if (applying) await applying;
    return event;
  }

  /**
   * Appends an event without applying it (for events the engine alone cares about). The draft becomes the
   * event (every caller builds a fresh one): a spread of drafts of a dozen shapes costs more than the rest.
   */
  append(draft: EventDraft): WorkflowEvent {
    this.time = this.now;
    const event = draft as WorkflowEvent;
    event.runId = this.runId;
    event.seq = ++this.own.version;
    event.timestamp = iso(this.now);
    this.own.newEvents.push(event);
    return event;
  }

  /**
   * Applies one event of the log to the live workflow; returns the drain to wait for when the event woke the
   * workflow (not an async function: an event that wakes nothing costs no promise).
   */
  private apply(event: WorkflowEvent): Promise<void> | undefined {
    this.time = Date.parse(event.timestamp);
    switch (event.type) {
      case "step_started":
      case "step_retrying": {
        if (event.type === "step_started" && event.attempt === 1) return this.checkCommandIssued(event);
        const pending = this.steps.get(event.stepId);
        if (!pending)
          return this.mismatch(
            `The log retries step "${event.stepName}" (${event.stepId}) but the workflow does not wait for it`,
          );
        if (event.type === "step_retrying") {
          pending.state = "retry_wait";
          pending.retryAt = event.retryAt;
        } else {
          pending.attempt = event.attempt;
          pending.startedSeq = event.seq;
          pending.state = "running";
          pending.retryAt = undefined;
        }
        return;
      }
      case "sleep_created":
      case "hook_created":
      case "child_started":
        return this.checkCommandIssued(event);
      case "hook_received":
      case "hook_timed_out": {
        if (event.type === "hook_received") this.consumedSignals.add(event.signalId);
        const pending = this.hooks.get(event.hookId);
        if (!pending) {
          return this.mismatch(
            `The log delivers event "${event.eventName}" (${event.hookId}) but the workflow does not wait for it`,
          );
        }
        this.hooks.delete(event.hookId);
        if (event.type === "hook_timed_out") {
          const at = iso(pending.timeoutAt ?? 0);
          pending.reject(
            new TimeoutError(`waitForEvent("${event.eventName}") timed out: no event arrived before ${at}.`),
          );
        } else if (pending.schema) {
          const parsed = safeParseWithMessages(pending.schema, event.payload);
          if (parsed.success) pending.resolve(parsed.data);
          else pending.reject(new EventPayloadError(event.eventName, parsed.error.issues));
        } else {
          pending.resolve(structuredClone(event.payload));
        }
        return drain();
      }
      case "child_completed":
      case "child_failed":
        return this.settle(
          this.children,
          event.childId,
          event,
          () =>
            `The log has a result for child run ${event.childRunId} (${event.childId}) but the workflow did not start it`,
        );
      case "step_completed":
      case "step_failed":
        return this.settle(
          this.steps,
          event.stepId,
          event,
          () =>
            `The log has a result for step "${event.stepName}" (${event.stepId}) but the workflow did not call it`,
        );
      case "cancel_requested": {
        this.own.cancelRequested = event.reason;
        const error = () => new CancelledError(`Run ${this.runId} was cancelled: ${event.reason}`);
        // The engine cancels the children; here every wait of this run ends with CancelledError.
        for (const waits of Object.values(this.waitMaps)) {
          for (const wait of waits.values()) wait.reject(error());
          waits.clear();
        }
        return drain();
      }
      case "sleep_completed":
        return this.settle(
          this.sleeps,
          event.sleepId,
          {},
          () => `The log completes ${event.sleepId} but the workflow is not sleeping there`,
        );
      default:
        return;
    }
  }

  /**
   * Ends the wait `id` of `waits` with the event's result or error (a sleep's has neither); when the workflow
   * has no such wait, the code and the log part (`missing` says what the log has).
   */
  private settle(
    waits: Map<string, Settle<unknown>>,
    id: string,
    event: { result?: unknown; error?: SerializedError },
    missing: () => string,
  ): Promise<void> | undefined {
    const pending = waits.get(id);
    if (!pending) return this.mismatch(missing());
    waits.delete(id);
    if (event.error) pending.reject(deserializeError(event.error));
    else pending.resolve(structuredClone(event.result));
    return drain();
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

  private mismatch(message: string, seq = this.own.version): undefined {
    if (this.own.nonDeterminism) return undefined;
    // A replay that threw before getting there: its error is the cause to show.
    const { settled } = this;
    this.own.nonDeterminism = new NonDeterminismError(
      settled && !settled.ok ? `${message}: it threw ${String(settled.error)} first` : message,
    );
    this.own.mismatchSeq = seq;
    return undefined;
  }

  /** Issues a command: matched against the log when replaying, appended when new. False on a mismatch. */
  /** @returns the seq of the command's event, or undefined when the log and the code disagree */
  private issue(ref: CommandRef, draft: () => EventDraft): number | undefined {
    const index = this.issuedCommands;
    const recorded = this.recordedCommands[index];
    // After continueAsNew() the run ends with this activation: a new call (a step in a `finally` around
    // `return continueAsNew(...)`) is not recorded and never settles. An older log that has one still matches.
    if (!recorded && this.continuation) return undefined;
    this.issuedCommands += 1;
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
   * run (a recorded result must never be reused for other arguments), at `seq`, the command's event. Undefined
   * for a new command.
   */
  private recordedInput(ref: CommandRef, json: string, seq: number): unknown[] | undefined {
    const key = `${ref.kind}:${ref.id}`;
    const recorded = this.recordedInputs.get(key);
    this.recordedInputs.delete(key);
    if (recorded === undefined || sameJson(json, recorded)) return recorded;
    this.mismatch(
      `The log has ${describeRef(ref)} called with ${shorten(JSON.stringify(recorded))} but the workflow now calls it with ${shorten(json)}`,
      seq,
    );
    return undefined;
  }

  /**
   * The one way a workflow call becomes a command: `prepare` checks the call (a throw rejects its promise),
   * the command is matched against the log or appended (`draft`), then `wait` registers what it waits on.
   */
  private command<T>(
    ref: CommandRef,
    prepare: () => () => EventDraft,
    wait: (seq: number, settle: Settle<T>) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let draft: () => EventDraft;
      try {
        draft = prepare();
      } catch (error) {
        reject(error);
        return;
      }
      const seq = this.issue(ref, draft);
      if (seq !== undefined) wait(seq, { resolve, reject });
    });
  }

  /** Called by a step function inside this workflow. */
  callStep(definition: AnyStep, args: unknown[]): Promise<unknown> {
    const stepId = this.nextId(definition.stepName);
    const ref: CommandRef = { kind: "step", id: stepId };
    let json = "";
    return this.command(
      ref,
      () => {
        json = toJson(args, `The input of step "${definition.stepName}" (${stepId})`, this.maxPayloadBytes);
        return () => ({
          type: "step_started",
          stepId,
          stepName: definition.stepName,
          attempt: 1,
          input: JSON.parse(json) as unknown[],
        });
      },
      (startedSeq, settle) => {
        // A replayed step keeps its recorded input: an attempt sent again runs with what the log says.
        const input = this.recordedInput(ref, json, startedSeq) ?? (JSON.parse(json) as unknown[]);
        if (this.nonDeterminism) return;
        const { stepName } = definition;
        const wait = { kind: "step", stepId, stepName, definition, input, attempt: 1, startedSeq } as const;
        this.steps.set(stepId, { ...wait, state: "running", ...settle });
      },
    );
  }

  /** Called by `sleep()` inside this workflow. */
  callSleep(duration: Duration): Promise<void> {
    const sleepId = this.nextId("sleep");
    // A new sleep counts from now; a replayed one keeps the resume time in its log.
    const now = this.now;
    let resumeAt = 0;
    return this.command<void>(
      { kind: "sleep", id: sleepId },
      () => {
        resumeAt = this.recordedResumeAt.get(sleepId) ?? resolveDeadline(duration, now);
        return () => ({ type: "sleep_created", sleepId, durationMs: Math.max(0, resumeAt - now), resumeAt });
      },
      (_seq, settle) =>
        this.sleeps.set(sleepId, { kind: "sleep", sleepId, resumeAt, since: this.time, ...settle }),
    );
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
    // Resolved at the call: a bad timeout throws from createWebhook() itself, not from a later wait() after
    // the webhook's path (never recorded, so another on replay) was handed out.
    const timeoutAt = recorded
      ? recorded.timeoutAt
      : options.timeout === undefined
        ? undefined
        : resolveDeadline(options.timeout, this.now);
    const promise = this.command<unknown>(
      { kind: "hook", id: hookId },
      () => () => ({
        type: "hook_created",
        hookId,
        eventName,
        ...optional("timeoutAt", timeoutAt),
        ...optional("token", token),
      }),
      (_seq, settle) =>
        this.hooks.set(hookId, {
          kind: "hook",
          hookId,
          eventName,
          timeoutAt,
          schema: options.schema,
          since: this.time,
          ...settle,
        }),
    );
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
    const childRunId = childRunIdOf(this.runId, childId);
    const ref: CommandRef = { kind: "child", id: childId };
    let json = "";
    return this.command(
      ref,
      () => {
        json = toJson(
          args,
          `The input of child workflow "${definition.name}" (${childId})`,
          this.maxPayloadBytes,
        );
        return () => ({
          type: "child_started",
          childId,
          childRunId,
          workflowName: definition.name,
          input: JSON.parse(json) as unknown[],
        });
      },
      (seq, settle) => {
        const input = this.recordedInput(ref, json, seq) ?? (JSON.parse(json) as unknown[]);
        if (this.nonDeterminism) return;
        const { name: workflowName } = definition;
        this.children.set(childId, {
          kind: "child",
          childId,
          childRunId,
          workflowName,
          input,
          since: this.time,
          ...settle,
        });
      },
    );
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
      ...optional("data", safeData),
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
    const merged = { ...this.own.tags, ...valid };
    validateTags(merged, `run ${this.runId}`);
    this.own.tags = merged;
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
    validateWorkflowInput(this.definition, args);
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

  /** The workflow's outcome as a log event, once it has one. */
  terminalDraft(): EventDraft | undefined {
    if (this.nonDeterminism) return { type: "workflow_failed", error: serializeError(this.nonDeterminism) };
    if (this.continuation) {
      // Cancelled meanwhile: the chain ends here rather than going on in a new run.
      if (this.own.cancelRequested !== undefined)
        return { type: "workflow_cancelled", reason: this.own.cancelRequested };
      return {
        type: "workflow_continued_as_new",
        input: this.continuation.input,
        continuedAs: continuationRunIdOf(this.runId),
      };
    }
    if (!this.settled) {
      // Unsettled and waiting for nothing tsworkflow knows: no event can ever wake it.
      if (this.waits().length === 0)
        return {
          type: "workflow_failed",
          error: serializeError(new ForeignAwaitError(this.definition.name)),
        };
      return undefined;
    }
    // Cancelled: the run ends so whether the `CancelledError` got out or the workflow caught it and returned
    // (its code after the catch ran as clean-up). Another error (a failed clean-up) fails it.
    if (
      this.own.cancelRequested !== undefined &&
      (this.settled.ok || this.settled.error instanceof CancelledError)
    ) {
      return { type: "workflow_cancelled", reason: this.own.cancelRequested };
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

/** The command a workflow issued that this event records, if it records one. */
export function commandOf(event: WorkflowEvent): CommandRef | undefined {
  if (event.type === "step_started" && event.attempt === 1) return { kind: "step", id: event.stepId };
  if (event.type === "sleep_created") return { kind: "sleep", id: event.sleepId };
  if (event.type === "hook_created") return { kind: "hook", id: event.hookId };
  if (event.type === "child_started") return { kind: "child", id: event.childId };
  return undefined;
}

/** A child's run id follows from its parent's and its place there, so starting it twice is harmless. */
export function childRunIdOf(parentRunId: string, childId: string): string {
  const digest = sha256(`${parentRunId}\u0000${childId}`).slice(0, 24);
  return `child_${digest}`;
}

function seedOf(text: string): number {
  let hash = 2166136261;
  for (let index = 0; index < text.length; index += 1)
    hash = Math.imul(hash ^ text.charCodeAt(index), 16777619);
  return hash | 0;
}
