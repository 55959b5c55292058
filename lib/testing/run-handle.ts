import {
  CancelledError,
  ConfigurationError,
  deserializeError,
  InvalidRunStateError,
} from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import type { Serialized } from "../core/serialization.ts";
import type { AnyStep, StepDefinition } from "../core/step.ts";
import type { RunRecord, RunStatus } from "../ports/event-store.ts";
import type { WebhookResponse } from "../webhooks/handle-webhook.ts";
import { type StepSummary, summarizeSteps } from "./step-summaries.ts";
import { formatTimeline } from "./timeline.ts";

/** Options of {@link RunHandle.callWebhook}. */
export interface CallWebhookOptions {
  /** Headers of the call, e.g. from `signWebhook` for a workflow that checks signatures. @default none */
  headers?: Record<string, string>;
}

/**
 * A run started in a test environment (`env.start`, `env.getHandle`), to steer it and look at it. Every
 * method first lets the environment's runs go as far as they can without the clock moving (no task queued
 * or running), so what a test sees never depends on timing.
 * @example
 * import { createTestEnvironment } from "tsworkflow/testing";
 * const env = await createTestEnvironment({ timeSkipping: true });
 * const run = await env.start(approvalOrder, ["order-1", "https://shop.example"]);
 * await run.sendEvent("approval", { approved: true, by: "ada" });
 * expect(await run.result()).toMatchObject({ status: "fulfilled" });
 */
export interface RunHandle<Result = unknown> {
  readonly runId: string;

  /**
   * The workflow's result as the run's log gives it back ({@link Serialized}: a `Date` as its ISO string,
   * `undefined` as `null`), once the run has completed (for a run that continued as new, once the last run
   * of its chain has: its result, error or cancellation). With `timeSkipping`, sleeps, retry delays and
   * timeouts pass on the way (as with Temporal's time-skipping environment); without it, the clock moves
   * only through `env.skip` and `env.skipToNextTimer`.
   * @throws the workflow's error (as its tsworkflow class: `FatalError`, `TimeoutError`…) when the run
   *   failed, with the run's timeline added to its message
   * @throws CancelledError when the run was cancelled, with the reason and the run's timeline
   * @throws InvalidRunStateError when the run has not finished and nothing in the environment will move it
   *   on (it waits for an event, or for a timer and `timeSkipping` is off, or it is pending for a run
   *   concurrency slot held by such runs), saying what it waits for (and which runs hold the slot)
   * @throws RuntimeClosedError when the run has not finished and the environment was closed
   * @throws ReplayMismatchError when the run (or a run of its `continueAsNew` chain) does not replay: its
   *   log replayed with the same code makes other calls, or ends with another result or error (see
   *   `TestEnvironmentOptions.replayCheck`)
   */
  result(): Promise<Serialized<Result>>;

  /** `pending`, `running`, `suspended`, `completed`, `failed`, `cancelled` or `continued`. */
  status(): Promise<RunStatus>;

  /**
   * The run's document, as `getRun(runId)` gives it: status, input, result or error, timestamps, version,
   * tags, and along a `continueAsNew` chain `continuedFrom` and `continuedAs`.
   * @example
   * const next = env.getHandle((await run.describe()).continuedAs as string);   // the run it continued as
   */
  describe(): Promise<RunRecord>;

  /**
   * The run's event log, in order.
   * @example
   * expect(await run.events()).toContainEqual(expect.objectContaining({ type: "hook_timed_out" }));
   * expect((await run.events()).map((event) => event.type)).toContain("sleep_completed");
   */
  events(): Promise<WorkflowEvent[]>;

  /**
   * Each step call of the run, in the order of the calls: id, name, status, attempts, input, and the
   * result or the last error.
   * @example
   * expect(await run.steps()).toMatchObject([
   *   { name: "request_approval", status: "completed", attempts: 1 },
   *   { name: "fulfil_order", status: "completed", result: { shipped: true } },
   * ]);
   */
  steps(): Promise<StepSummary[]>;

  /**
   * One step call, by the step (typed by its arguments and result as the log gives them back, see
   * {@link Serialized}) or its name: the first call, or the `index`-th (from 0) when the run calls it more
   * than once. Undefined when the run has not called it (that often).
   * @throws ConfigurationError for a name that no step of the environment has and the run's log does not
   *   hold (a misspelt name would otherwise read as "not called")
   * @example
   * expect(await run.step(fulfil)).toMatchObject({ status: "completed", attempts: 1 });
   */
  step<Args extends unknown[], StepResult>(
    step: StepDefinition<Args, StepResult>,
    index?: number,
  ): Promise<StepSummary<Serialized<Args>, Serialized<Awaited<StepResult>>> | undefined>;
  step(stepName: string, index?: number): Promise<StepSummary | undefined>;

  /**
   * The run's log as text, one event a line with its time since the start (the same text `result()` adds
   * to its errors): `console.log(await run.timeline())` while writing a test.
   */
  timeline(): Promise<string>;

  /**
   * Sends an event to the run, as `sendEvent(runId, name, payload)` does: the oldest `waitForEvent(name)`
   * gets the payload (an event sent before the run waits is kept). Resolves once the run has reacted.
   * @throws InvalidRunStateError when the run has finished
   */
  sendEvent(
    eventName: string,
    payload: unknown,
    options?: { signalId?: string },
  ): Promise<{ delivered: boolean }>;

  /**
   * Calls a webhook of the run (made by `createWebhook`) with `body` as JSON, through the same handler as
   * `POST /hooks/<token>` on the servers, and resolves with its answer once the run has reacted:
   * `{ status: 202, body: { ok: true, runId } }`, or a refusal such as 409 `ALREADY_CALLED`, 410 `EXPIRED`
   * (its wait timed out, or its run finished) or 404 `UNKNOWN_TOKEN`.
   * @param tokenOrPath the hook's `token`, its `path` (`/hooks/<token>`) or a URL that ends with it
   * @example
   * const response = await run.callWebhook(approvalUrl, { approved: true, by: "ada" });
   * expect(response.status).toBe(202);
   */
  callWebhook(tokenOrPath: string, body: unknown, options?: CallWebhookOptions): Promise<WebhookResponse>;

  /**
   * Cancels the run (see `cancelRun`): its waits throw `CancelledError`, its `finally` blocks run, and it
   * ends `cancelled`. Resolves once the run has reacted.
   * @throws InvalidRunStateError when the run has finished
   */
  cancel(reason?: string): Promise<void>;

  /**
   * Retries a failed run (see `retryRun`): the step that failed it gets another attempt, completed steps
   * keep their results. Resolves once the run has reacted; `result()` then waits for the new end.
   * @throws InvalidRunStateError unless the run failed
   */
  retry(): Promise<void>;
}

/** What a run handle needs from its test environment. */
export interface RunDriver {
  /** The run's document and log, once the runs have gone as far as they can without time passing. */
  read(runId: string): Promise<{ run: RunRecord; events: WorkflowEvent[] }>;
  /** Resolves with the finished run; rejects when it will not finish by itself. */
  finished(runId: string): Promise<RunRecord>;
  sendEvent(
    runId: string,
    eventName: string,
    payload: unknown,
    options: { signalId?: string },
  ): Promise<{ delivered: boolean }>;
  callWebhook(token: string, body: string, headers: Record<string, string>): Promise<WebhookResponse>;
  cancel(runId: string, reason: string | undefined): Promise<void>;
  retry(runId: string): Promise<void>;
  /** Whether a step of that name is registered in the environment. */
  knowsStep(stepName: string): boolean;
}

/** A {@link RunHandle} on a run of a test environment, reading and acting through its driver. */
export class EnvironmentRunHandle<Result> implements RunHandle<Result> {
  constructor(
    readonly runId: string,
    private readonly driver: RunDriver,
  ) {}

  async result(): Promise<Serialized<Result>> {
    const run = await this.driver.finished(this.runId);
    if (run.status === "completed") return run.result as Serialized<Result>;
    const { events } = await this.driver.read(run.runId);
    const timeline = formatTimeline(run, events);
    if (run.status === "cancelled") throw new CancelledError(timeline);
    if (!run.error) throw new InvalidRunStateError(timeline);
    throw withTimeline(deserializeError(run.error), timeline);
  }

  async status(): Promise<RunStatus> {
    return (await this.driver.read(this.runId)).run.status;
  }

  async describe(): Promise<RunRecord> {
    return (await this.driver.read(this.runId)).run;
  }

  async events(): Promise<WorkflowEvent[]> {
    return (await this.driver.read(this.runId)).events;
  }

  async steps(): Promise<StepSummary[]> {
    return summarizeSteps(await this.events());
  }

  step<Args extends unknown[], StepResult>(
    step: StepDefinition<Args, StepResult>,
    index?: number,
  ): Promise<StepSummary<Serialized<Args>, Serialized<Awaited<StepResult>>> | undefined>;
  step(stepName: string, index?: number): Promise<StepSummary | undefined>;
  async step(step: AnyStep | string, index = 0): Promise<StepSummary | undefined> {
    const name = typeof step === "string" ? step : step.stepName;
    const calls = (await this.steps()).filter((summary) => summary.name === name);
    if (calls.length === 0 && !this.driver.knowsStep(name))
      throw new ConfigurationError(
        `No step named ${JSON.stringify(name)} in this test environment, nor in run ${this.runId}'s log: check the name.`,
      );
    return calls[index];
  }

  async timeline(): Promise<string> {
    const { run, events } = await this.driver.read(this.runId);
    return formatTimeline(run, events);
  }

  sendEvent(eventName: string, payload: unknown, options: { signalId?: string } = {}) {
    return this.driver.sendEvent(this.runId, eventName, payload, options);
  }

  callWebhook(
    tokenOrPath: string,
    body: unknown,
    options: CallWebhookOptions = {},
  ): Promise<WebhookResponse> {
    const token = tokenOrPath.slice(tokenOrPath.lastIndexOf("/") + 1);
    return this.driver.callWebhook(token, JSON.stringify(body ?? null), options.headers ?? {});
  }

  cancel(reason?: string): Promise<void> {
    return this.driver.cancel(this.runId, reason);
  }

  retry(): Promise<void> {
    return this.driver.retry(this.runId);
  }
}

/** The error with the run's timeline after its message (in its stack too, which Node's test runner prints). */
function withTimeline(error: Error, timeline: string): Error {
  const frames = error.stack?.indexOf("\n    at ") ?? -1;
  error.message = `${error.message}\n\n${timeline}`;
  error.stack = `${error.name}: ${error.message}${frames >= 0 ? (error.stack as string).slice(frames) : ""}`;
  return error;
}
