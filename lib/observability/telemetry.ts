import type {
  Attributes,
  Context,
  Counter,
  Histogram,
  Span,
  Tracer,
  TracerProvider,
  UpDownCounter,
} from "@opentelemetry/api";
import type { SerializedError } from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import type { StepOutcome } from "../ports/event-store.ts";
import type { ActivationTask, StepTask } from "../ports/task-queue.ts";
import {
  type ActivationSpan,
  type EngineTelemetry,
  type StartSpan,
  type TelemetryFactory,
  type TracedRun,
  type TracedWait,
  waitsOfKind,
} from "./engine-telemetry.ts";
import { loadOpenTelemetry, type OpenTelemetryApi } from "./open-telemetry.ts";
import { formatTraceparent, parseTraceparent } from "./trace-context.ts";

/** The instrumentation scope of tsworkflow's spans and metrics. */
export const INSTRUMENTATION_NAME = "tsworkflow";

const NO_START: StartSpan = { traceparent: undefined, end() {} };

interface Instruments {
  runsStarted: Counter;
  runsFinished: Counter;
  activeRuns: UpDownCounter;
  stepAttempts: Counter;
  stepRetries: Counter;
  stepDuration: Histogram;
  scheduleToStart: Histogram;
  activationScheduleToStart: Histogram;
  timerLateness: Histogram;
}

/**
 * Traces and metrics of runs through `@opentelemetry/api`, when the app has it (a no-op otherwise, and
 * when no SDK is registered). One trace per run: the span of `start()` (a child of the caller's span) is
 * the run's root, and every activation, step attempt, sleep, wait and child run of the run is under it,
 * whatever process, BullMQ job, SQS message or Lambda invocation handles it (the `traceparent` is stored in
 * the log and carried in step tasks). Spans are emitted for what happens, never for what a replay
 * re-reads: an activation's spans describe the events it committed.
 * @internal Reached through `openTelemetry`; its constructor names `@opentelemetry/api`'s types.
 */
export class Telemetry implements EngineTelemetry {
  private api: OpenTelemetryApi | undefined;
  private tracer: Tracer | undefined;
  private instruments: Instruments | undefined;
  /** Whether the instruments record: false when no MeterProvider was registered when the API was loaded. */
  private metering = false;
  /** The API's no-op tracer provider: while the global provider delegates to it, no span is recorded. */
  private noTracing: TracerProvider | undefined;
  private readonly ready: Promise<void>;
  /** Set once `ready` has resolved: the hot paths then skip awaiting it (a turn of the event loop each). */
  private loaded = false;

  /**
   * @param now the engine's clock (span times agree with the log's timestamps)
   * @param load how `@opentelemetry/api` is found
   */
  constructor(
    private readonly now: () => number,
    load: () => Promise<OpenTelemetryApi | undefined> = loadOpenTelemetry,
  ) {
    this.ready = load().then(
      (api) => {
        this.loaded = true;
        if (!api) return;
        this.api = api;
        this.tracer = api.trace.getTracer(INSTRUMENTATION_NAME);
        this.instruments = instrumentsOf(api);
        this.metering = api.metrics.getMeter(INSTRUMENTATION_NAME) !== api.createNoopMeter();
        this.noTracing = new api.ProxyTracerProvider().getDelegate();
      },
      () => {
        this.loaded = true;
      },
    );
  }

  /** True when `@opentelemetry/api` is loaded and not idle (tasks then carry their send time for the schedule-to-start metric). */
  get enabled(): boolean {
    return this.api !== undefined && !this.idle();
  }

  /**
   * True while nothing would be recorded: the API is loaded but no SDK is registered (no tracer provider now,
   * no meter provider when it was loaded). Work without a carried trace then skips the API's no-op spans,
   * which cost about a sixth of a step's CPU time (docs/engine.md). A tracer provider registered later is
   * seen at the next activation or attempt.
   */
  private idle(): boolean {
    const provider = this.api?.trace.getTracerProvider() as { getDelegate?(): TracerProvider } | undefined;
    return !this.metering && provider?.getDelegate?.() === this.noTracing;
  }

  /** Resolves once `@opentelemetry/api` is loaded or known to be absent. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Opens the span of `start()`, under `parent` (a parent run's activation) or the caller's active span. */
  async start(workflowName: string, runId: string, parent: string | undefined): Promise<StartSpan> {
    await this.ready;
    const { api, tracer } = this;
    if (!api || !tracer) return NO_START;
    const parentContext = this.contextOf(parent) ?? api.context.active();
    const span = tracer.startSpan(
      `start ${workflowName}`,
      { kind: api.SpanKind.PRODUCER, startTime: this.now(), attributes: runAttributes(runId, workflowName) },
      parentContext,
    );
    return {
      traceparent: this.traceparentOf(span),
      end: (created, error) => {
        if (created !== undefined) span.setAttribute("tsworkflow.run.created", created);
        if (error !== undefined) this.fail(span, error);
        span.end(this.now());
      },
    };
  }

  /** The span of one activation of a run, begun once the run is loaded; `end` is harmless when it never began. */
  async activation(task: ActivationTask): Promise<ActivationSpan> {
    if (!this.loaded) await this.ready;
    const { api, tracer } = this;
    const startTime = this.now();
    let span: Span | undefined;
    let run: RunSnapshot | undefined;
    let parent: Context | undefined;
    const telemetry = this;
    return {
      get traceparent() {
        return span && telemetry.traceparentOf(span);
      },
      begin(traced) {
        if (traced.started.traceparent === undefined && telemetry.idle()) return;
        if (task.sentAt !== undefined && !span)
          telemetry.instruments?.activationScheduleToStart.record(Math.max(0, startTime - task.sentAt), {
            "tsworkflow.workflow": traced.definition.name,
          });
        if (!api || !tracer || span) return;
        // What the run waits for now: applying the activation's events removes it from the live run.
        // Only the fields telemetry reads: spreading the live run would copy all of its state.
        run = {
          runId: traced.runId,
          definition: traced.definition,
          started: traced.started,
          committedVersion: traced.committedVersion,
          lastRetry: traced.lastRetry,
          sleeps: waitsOfKind(traced, "sleep", (sleep) => sleep.sleepId),
          hooks: waitsOfKind(traced, "hook", (hook) => hook.hookId),
          children: waitsOfKind(traced, "child", (child) => child.childId),
        };
        parent = telemetry.contextOf(traced.started.traceparent) ?? api.ROOT_CONTEXT;
        span = tracer.startSpan(
          `activate ${traced.definition.name}`,
          {
            kind: api.SpanKind.CONSUMER,
            startTime,
            attributes: {
              ...runAttributes(traced.runId, traced.definition.name),
              "tsworkflow.activation.cause": task.cause.kind,
              ...(task.redelivered === true ? { "tsworkflow.activation.redelivered": true } : {}),
            },
          },
          parent,
        );
      },
      committed(events) {
        if (!span || !run || !api) return;
        span.setAttribute("tsworkflow.activation.events", events.length);
        // A run is counted once, by the activation that commits its first events, however it was started
        // (start(), a parent, a schedule, a continuation, another process's client): a redelivery or a
        // replay finds more than workflow_started in the log, and a concurrent copy's commit conflicts.
        // A failed run that `retryRun` took back is active again from the commit on top of the retry (its
        // `workflow_retried` and the step attempt it began, if any), found the same way, so that
        // `runs.active` falls once more when it finishes again.
        const first = run.committedVersion === 1;
        const retry = run.lastRetry;
        if (first || run.committedVersion === (retry && retry.seq + retry.retriedFailures.length)) {
          const workflow = { "tsworkflow.workflow": run.definition.name };
          if (first) telemetry.instruments?.runsStarted.add(1, workflow);
          telemetry.instruments?.activeRuns.add(1, workflow);
        }
        const under = api.trace.setSpan(parent ?? api.ROOT_CONTEXT, span);
        for (const event of events)
          if (RECORDED_EVENTS.has(event.type))
            telemetry.recordEvent(run, event, span, under, parent ?? api.ROOT_CONTEXT);
      },
      end(error) {
        if (!span) return;
        if (error !== undefined) telemetry.fail(span, error);
        span.end(telemetry.now());
      },
    };
  }

  /** Runs one step attempt inside its span (under the activation that sent it), which user code's spans join. */
  async stepAttempt(task: StepTask, attempt: () => Promise<StepOutcome>): Promise<StepOutcome> {
    if (!this.loaded) await this.ready;
    const { api, tracer } = this;
    if (!api || !tracer || (task.traceparent === undefined && this.idle())) return attempt();
    const parent = this.contextOf(task.traceparent) ?? api.ROOT_CONTEXT;
    const attributes = {
      ...runAttributes(task.runId, task.workflowName),
      "tsworkflow.step.id": task.stepId,
      "tsworkflow.step.name": task.stepName,
      "tsworkflow.step.attempt": task.attempt,
    };
    const span = tracer.startSpan(
      `step ${task.stepName}`,
      { kind: api.SpanKind.CONSUMER, attributes },
      parent,
    );
    const began = this.now();
    if (task.sentAt !== undefined) {
      this.instruments?.scheduleToStart.record(Math.max(0, began - task.sentAt), {
        "tsworkflow.workflow": task.workflowName,
        "tsworkflow.step.name": task.stepName,
      });
    }
    let outcome: StepOutcome | undefined;
    try {
      outcome = await api.context.with(api.trace.setSpan(parent, span), attempt);
      return outcome;
    } finally {
      const ok = outcome?.ok === true;
      if (outcome && !outcome.ok) this.failWith(span, outcome.error);
      const metric = {
        "tsworkflow.workflow": task.workflowName,
        "tsworkflow.step.name": task.stepName,
        "tsworkflow.step.outcome": ok ? "ok" : "error",
      };
      this.instruments?.stepAttempts.add(1, metric);
      this.instruments?.stepDuration.record(this.now() - began, metric);
      span.end(this.now());
    }
  }

  /** Spans and metrics for one newly committed event. */
  private recordEvent(
    run: RunSnapshot,
    event: WorkflowEvent,
    activation: Span,
    under: Context,
    runContext: Context,
  ): void {
    const api = this.api as OpenTelemetryApi;
    const tracer = this.tracer as Tracer;
    const end = Date.parse(event.timestamp);
    const workflow = { "tsworkflow.workflow": run.definition.name };
    const child = (
      name: string,
      since: number,
      attributes: Attributes,
      error?: SerializedError,
      parent: Context = under,
    ) => {
      const span = tracer.startSpan(
        name,
        {
          kind: api.SpanKind.INTERNAL,
          startTime: since,
          attributes: { ...runAttributes(run.runId, run.definition.name), ...attributes },
        },
        parent,
      );
      if (error) this.failWith(span, error);
      span.end(end);
    };
    switch (event.type) {
      case "step_retrying":
        this.instruments?.stepRetries.add(1, { ...workflow, "tsworkflow.step.name": event.stepName });
        activation.addEvent("step retrying", {
          "tsworkflow.step.id": event.stepId,
          "tsworkflow.step.name": event.stepName,
          "tsworkflow.step.attempt": event.attempt,
          "tsworkflow.retry.delay_ms": event.delayMs,
          "tsworkflow.retry.next_attempt": event.nextAttempt,
          "exception.type": event.error.name,
          "exception.message": event.error.message,
        });
        return;
      case "sleep_completed": {
        const sleep = run.sleeps.get(event.sleepId);
        if (!sleep) return;
        this.instruments?.timerLateness.record(Math.max(0, end - sleep.resumeAt), workflow);
        child(`sleep ${event.sleepId}`, sleep.since, {
          "tsworkflow.sleep.id": event.sleepId,
          "tsworkflow.sleep.resume_at": new Date(sleep.resumeAt).toISOString(),
        });
        return;
      }
      case "hook_received":
      case "hook_timed_out": {
        const hook = run.hooks.get(event.hookId);
        if (!hook) return;
        child(`wait ${event.eventName}`, hook.since, {
          "tsworkflow.wait.event": event.eventName,
          "tsworkflow.wait.timed_out": event.type === "hook_timed_out",
        });
        return;
      }
      case "child_completed":
      case "child_failed": {
        const pending = run.children.get(event.childId);
        if (!pending) return;
        child(
          `child ${pending.workflowName}`,
          pending.since,
          { "tsworkflow.child.id": event.childId, "tsworkflow.child.run_id": event.childRunId },
          event.type === "child_failed" ? event.error : undefined,
        );
        return;
      }
      case "workflow_completed":
      case "workflow_failed":
      case "workflow_cancelled":
      case "workflow_continued_as_new": {
        // A continued run ends (`continued`, as its document says); its continuation is a run of its own.
        const status =
          event.type === "workflow_continued_as_new" ? "continued" : event.type.slice("workflow_".length);
        this.instruments?.runsFinished.add(1, { ...workflow, "tsworkflow.run.status": status });
        this.instruments?.activeRuns.add(-1, workflow);
        // The run's own span, from its start to its end (written by the activation that finished it).
        child(
          `run ${run.definition.name}`,
          Date.parse(run.started.timestamp),
          { "tsworkflow.run.status": status },
          event.type === "workflow_failed" ? event.error : undefined,
          runContext,
        );
        return;
      }
      default:
        return;
    }
  }

  private contextOf(traceparent: string | undefined): Context | undefined {
    const carried = parseTraceparent(traceparent);
    if (!carried || !this.api) return undefined;
    return this.api.trace.setSpanContext(this.api.ROOT_CONTEXT, { ...carried, isRemote: true });
  }

  private traceparentOf(span: Span): string | undefined {
    const context = span.spanContext();
    return this.api?.trace.isSpanContextValid(context) ? formatTraceparent(context) : undefined;
  }

  private fail(span: Span, error: unknown): void {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: 2, message: error instanceof Error ? error.message : String(error) });
  }

  private failWith(span: Span, error: SerializedError): void {
    span.addEvent("exception", { "exception.type": error.name, "exception.message": error.message });
    span.setStatus({ code: 2, message: error.message });
  }
}

/** The events `recordEvent` makes spans or metrics of (most of a log, steps started and done, it does not). */
const RECORDED_EVENTS = new Set<WorkflowEvent["type"]>([
  "step_retrying",
  "sleep_completed",
  "hook_received",
  "hook_timed_out",
  "child_completed",
  "child_failed",
  "workflow_completed",
  "workflow_failed",
  "workflow_cancelled",
  "workflow_continued_as_new",
]);

/** A run as its activation began: what it waited on then (applying the activation's events ends those waits). */
interface RunSnapshot extends Omit<TracedRun, "waits"> {
  sleeps: Map<string, Extract<TracedWait, { kind: "sleep" }>>;
  hooks: Map<string, Extract<TracedWait, { kind: "hook" }>>;
  children: Map<string, Extract<TracedWait, { kind: "child" }>>;
}

function runAttributes(runId: string, workflowName: string): Attributes {
  return { "tsworkflow.run.id": runId, "tsworkflow.workflow": workflowName };
}

function instrumentsOf(api: OpenTelemetryApi): Instruments {
  const meter = api.metrics.getMeter(INSTRUMENTATION_NAME);
  return {
    runsStarted: meter.createCounter("tsworkflow.runs.started", {
      description: "Runs that began (their first activation), child runs and continuations included",
    }),
    runsFinished: meter.createCounter("tsworkflow.runs.finished", {
      description: "Runs that completed, failed or were cancelled (tsworkflow.run.status)",
    }),
    activeRuns: meter.createUpDownCounter("tsworkflow.runs.active", {
      description: "Runs started and not finished yet, as seen by this process",
    }),
    stepAttempts: meter.createCounter("tsworkflow.step.attempts", { description: "Step attempts run" }),
    stepRetries: meter.createCounter("tsworkflow.step.retries", {
      description: "Step attempts that will be retried",
    }),
    stepDuration: meter.createHistogram("tsworkflow.step.duration", {
      unit: "ms",
      description: "Duration of a step attempt",
    }),
    scheduleToStart: meter.createHistogram("tsworkflow.step.schedule_to_start", {
      unit: "ms",
      description: "Time from the step task being sent to its attempt starting",
    }),
    activationScheduleToStart: meter.createHistogram("tsworkflow.activation.schedule_to_start", {
      unit: "ms",
      description: "Time from an activation being sent (a step's outcome, a start, an event) to its start",
    }),
    timerLateness: meter.createHistogram("tsworkflow.timer.lateness", {
      unit: "ms",
      description: "How long after its resume time a sleep was applied",
    }),
  };
}

/**
 * Traces and metrics of runs through `@opentelemetry/api` (see the README's Observability section): pass it
 * as the `telemetry` option of a runtime, the Lambda handlers or the engine. The embedded and Redis runtimes
 * use it by default; on Lambda it is opt-in, so that a function that does not trace neither bundles nor
 * loads it.
 * @example
 * import { createHandlers, openTelemetry } from "tsworkflow/aws";
 * export const { workflowHandler, stepHandler, startHandler } = createHandlers({ workflows: [order] }, { telemetry: openTelemetry });
 */
export const openTelemetry: TelemetryFactory = (now) => new Telemetry(now);
