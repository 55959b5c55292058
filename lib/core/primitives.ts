import type { $ZodType } from "zod/v4/core";
import { currentExecution, getStepInfo, requireExecution } from "./context.ts";
import type { Duration } from "./durations.ts";
import { getLogger } from "./logger.ts";
import { assertName } from "./names.ts";
import { checkOptionNames, schemaOption } from "./options.ts";
import type { Serialized } from "./serialization.ts";
import type { RunTags } from "./tags.ts";
import type { AnyWorkflow, WorkflowArgs, WorkflowResult } from "./workflow.ts";
import type { LogLevel } from "./workflow-scope.ts";

/**
 * Suspends the workflow for a duration, or until a `Date`, without holding a process: the run is
 * woken by a durable timer. A suspension point.
 * @example
 * import { workflow, sleep } from "tsworkflow";
 * export const reminder = workflow("reminder", async () => {
 *   await sleep("3d");                      // or { hours: 2, minutes: 30 }, a Date, or ms
 * });
 * @throws NotInWorkflowError outside a workflow
 * @throws InvalidDurationError for a bad duration (the workflow sees it as a rejection)
 */
export function sleep(duration: Duration): Promise<void> {
  return requireExecution("sleep()").callSleep(duration);
}

function writeLog(level: LogLevel, message: string, data?: unknown): void {
  const execution = currentExecution();
  if (execution) {
    execution.callLog(level, message, data);
    return;
  }
  const logger = getLogger();
  // Inside a step, the line says which run and step it is about.
  const info = getStepInfo();
  const context = info
    ? { runId: info.runId, workflowName: info.workflowName, stepId: info.stepId, stepName: info.stepName }
    : {};
  const extra = data === undefined ? context : { ...context, data };
  if (level === "warning") logger.warn(message, extra);
  else logger[level](message, extra);
}

/**
 * Logs from workflow code: each message goes to the run's event log (`log_info`…) and to the structured
 * logger once, never again on replay. Outside a workflow it only goes to the logger (from inside a step,
 * with the step's `runId`, `workflowName`, `stepId` and `stepName`).
 * @example
 * import { workflow, log } from "tsworkflow";
 * export const wf = workflow("wf", async (orderId: string) => {
 *   log.info("processing order", { orderId });
 * });
 */
export const log = {
  info: (message: string, data?: unknown) => writeLog("info", message, data),
  warning: (message: string, data?: unknown) => writeLog("warning", message, data),
  error: (message: string, data?: unknown) => writeLog("error", message, data),
  debug: (message: string, data?: unknown) => writeLog("debug", message, data),
};

/**
 * Adds searchable tags to the run from inside its workflow (recorded in the log once, replayed; a key
 * already set gets the new value). Runs are then found with `listRuns({ tags })` or
 * `tsworkflow runs list --tag plan=pro`.
 * @example
 * import { setTags, step, workflow } from "tsworkflow";
 * const lookUpPlan = step("look_up_plan", async (userId: string) => (userId.startsWith("vip") ? "pro" : "free"));
 * export const onboarding = workflow("onboarding", async (userId: string) => {
 *   setTags({ plan: await lookUpPlan(userId) });
 * });
 * @throws InvalidTagError for a key or value that breaks the rules of `validateTags`, or more than 16 tags in all
 * @throws NotInWorkflowError outside a workflow
 */
export function setTags(tags: RunTags): void {
  requireExecution("setTags()").callSetTags(tags);
}

/**
 * Replay-safe current time. In a workflow, use it instead of `Date.now()` / `new Date()`: it is the time of
 * the event the workflow is reacting to, the same on every replay. Outside a workflow, the system time.
 */
export function now(): Date {
  const execution = currentExecution();
  return new Date(execution ? execution.currentTime() : Date.now());
}

/**
 * Replay-safe random number in [0, 1). In a workflow, use it instead of `Math.random()`: it is seeded by the
 * run id, so a replay draws the same numbers. Outside a workflow, `Math.random()`.
 */
export function random(): number {
  const execution = currentExecution();
  return execution ? execution.random() : Math.random();
}

/** Options of {@link waitForEvent}. */
export interface WaitForEventOptions<T> {
  /**
   * Give up after this long: the wait throws a `TimeoutError` the workflow can catch. An event stored
   * (`sendEvent` returned) before the deadline wins over the timeout, however late its delivery; one stored
   * at the deadline or later loses, and is kept for a later wait of that name. @default no limit
   */
  timeout?: Duration;
  /**
   * A zod schema (regular zod or zod/mini) for the payload; a payload that fails it throws
   * `EventPayloadError`. @default none
   */
  schema?: $ZodType<T>;
}

/**
 * Suspends the workflow until `sendEvent(runId, eventName, payload)` is called for its run, from any
 * process, and returns the payload. No resources are held while it waits. An event sent before the
 * workflow waits for it is kept, not lost. A suspension point.
 *
 * With a `schema`, the payload is what the schema makes of the stored payload (`z.coerce.date()` gives a
 * `Date`). Without one, `T` names what the sender passes, and the payload is typed as the log gives it back
 * ({@link Serialized}: a `Date` sent comes as its ISO string, `undefined` as `null`).
 * @example
 * import { workflow, waitForEvent, TimeoutError } from "tsworkflow";
 * import { z } from "zod";
 * export const expense = workflow("expense", async (amount: number) => {
 *   try {
 *     const { approved } = await waitForEvent("approval", { timeout: "3d", schema: z.object({ approved: z.boolean() }) });
 *     return approved ? "paid" : "rejected";
 *   } catch (error) {
 *     if (error instanceof TimeoutError) return "expired";
 *     throw error;
 *   }
 * });
 * @throws NotInWorkflowError outside a workflow
 */
export function waitForEvent<T>(
  eventName: string,
  options: WaitForEventOptions<T> & { schema: $ZodType<T> },
): Promise<T>;
/** Without a schema: `T` is what the sender passes, and the payload comes as {@link Serialized}`<T>`. */
export function waitForEvent<T = unknown>(
  eventName: string,
  options?: WaitForEventOptions<T> & { schema?: undefined },
): Promise<Serialized<T>>;
export function waitForEvent<T = unknown>(
  eventName: string,
  options: WaitForEventOptions<T> = {},
): Promise<T> {
  const execution = requireExecution("waitForEvent()");
  assertEventName(eventName);
  checkWaitOptions("waitForEvent()", options);
  return execution.callHook(eventName, options).promise as Promise<T>;
}

/**
 * The options of `waitForEvent()` and `createWebhook()`, checked at the call as the timeout is (when the
 * wait is recorded): a misspelt `timeout` would wait for ever.
 * @throws ConfigurationError for an unknown option or a `schema` that is not a zod schema
 */
function checkWaitOptions(owner: string, options: WaitForEventOptions<unknown>): void {
  checkOptionNames(owner, options, ["timeout", "schema"]);
  schemaOption(owner, "schema", options.schema);
}

/** A webhook created by {@link createWebhook}. */
export interface Webhook<T> {
  /** URL-safe; the endpoint is `POST /hooks/<token>`. */
  token: string;
  /** `/hooks/<token>`: append it to the dashboard's or the Function URL's base URL. */
  path: string;
  /** Resolves with the JSON body of the first valid call. */
  wait(): Promise<T>;
}

/** How the event names of `createWebhook()` begin (`webhook.0`, `webhook.1`…): the engine checks their bodies on receipt. */
export const WEBHOOK_EVENT_PREFIX = "webhook.";

/**
 * Creates a one-time webhook for this run: hand `path` (or `token`) to another system, then
 * `await hook.wait()`. A `POST /hooks/<token>` with a JSON body (signed with HMAC-SHA256 when a secret
 * is configured) resumes the run with that body. A suspension point once awaited. The body is typed as
 * for {@link waitForEvent}: by the `schema`'s output, or else as `Serialized<T>`.
 * @example
 * import { workflow, step, createWebhook } from "tsworkflow";
 * export const approval = workflow("approval", async (orderId: string) => {
 *   const hook = createWebhook<{ approved: boolean }>({ timeout: "3d" });
 *   await notifyManager(orderId, hook.path);
 *   return (await hook.wait()).approved;
 * });
 * @throws NotInWorkflowError outside a workflow
 * @throws InvalidDurationError for a bad `timeout`, ConfigurationError for an unknown option or a bad `schema`
 */
export function createWebhook<T>(options: WaitForEventOptions<T> & { schema: $ZodType<T> }): Webhook<T>;
/** Without a schema: `T` is the body the caller sends, and `wait()` gives it as {@link Serialized}`<T>`. */
export function createWebhook<T = unknown>(
  options?: WaitForEventOptions<T> & { schema?: undefined },
): Webhook<Serialized<T>>;
export function createWebhook<T = unknown>(options: WaitForEventOptions<T> = {}): Webhook<T> {
  const execution = requireExecution("createWebhook()");
  checkWaitOptions("createWebhook()", options);
  // Each webhook waits on an event name of its own, so a call to one token never reaches another.
  const { promise, token } = execution.callHook(`${WEBHOOK_EVENT_PREFIX}${execution.nextWebhookIndex()}`, {
    ...options,
    webhook: true,
  });
  // The wait is registered now; awaiting it later only observes it.
  promise.catch(() => {});
  return { token: token as string, path: `/hooks/${token}`, wait: () => promise as Promise<T> };
}

/**
 * Runs another workflow as a child run, linked to this one, and returns its result as the child's log gives
 * it back ({@link Serialized}: a `Date` as its ISO string), or throws its error. The child is its own run
 * with its own log; cancelling the parent cancels it. A suspension point.
 * @example
 * import { workflow, runChild } from "tsworkflow";
 * export const batch = workflow("batch", async (orders: string[]) =>
 *   Promise.all(orders.map((orderId) => runChild(processOrder, [{ orderId }]))));
 * @throws NotInWorkflowError outside a workflow
 * @throws WorkflowInputError (the promise rejects) when the child's workflow refuses `args`: not an array, or
 *   input its `input` schema rejects; no child run is stored
 */
export function runChild<W extends AnyWorkflow>(
  workflow: W,
  args: WorkflowArgs<W>,
): Promise<Serialized<WorkflowResult<W>>> {
  return requireExecution("runChild()").callChild(workflow, args) as Promise<Serialized<WorkflowResult<W>>>;
}

function assertEventName(eventName: string): void {
  assertName("event name", eventName);
}
