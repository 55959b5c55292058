import type { Logger } from "@aws-lambda-powertools/logger";
import { MAX_SQS_DELAY_SECONDS } from "../../adapters/aws/limits.ts";
import { deduplicationId, parseQueueMessage, type QueueMessage } from "../../adapters/aws/sqs-queue.ts";
import { InvalidMessageError, StepNotFoundError, WorkflowNotFoundError } from "../../core/errors.ts";
import { getLogger } from "../../core/logger.ts";
import * as z from "../../core/schema.ts";
import { runTagsSchema } from "../../core/tags.ts";
import { systemClock } from "../../ports/clock.ts";
import type { AwsRuntime } from "../../runtimes/aws.ts";
import { handleWebhook } from "../../webhooks/handle-webhook.ts";
import {
  errorDetails,
  holdBack,
  isPoison,
  MAX_STEP_DEFERRALS,
  unknownStepDelaySeconds,
  unknownWorkflowBackoffSeconds,
} from "./failures.ts";
import type { LambdaContext, SqsBatchResponse, SqsEvent, SqsRecord } from "./lambda-types.ts";
import { loggerFor } from "./log-context.ts";
import {
  createReaperHandler,
  createSweeperHandler,
  type ReaperHandler,
  type SweeperHandler,
} from "./maintenance.ts";
import { type HandlerOptions, runtimeFor, type WorkflowRegistry } from "./options.ts";

export { MAX_STEP_DEFERRALS, unknownStepDelaySeconds, unknownWorkflowBackoffSeconds } from "./failures.ts";
export type { ReaperHandler, SweeperHandler } from "./maintenance.ts";
export { createReaperHandler, createSweeperHandler } from "./maintenance.ts";
export type { HandlerOptions, WorkflowRegistry } from "./options.ts";

/** Whether SQS delivered this record before (an invocation that failed or died, a timeout). */
const receivedBefore = (record: SqsRecord) => Number(record.attributes.ApproximateReceiveCount) > 1;
/** What a function logs of a workflow or step its code does not know yet, held back for `seconds`. */
const notInThisCode = (what: "workflow" | "step", seconds: number) =>
  `${what} not in this code (a deploy in progress?); retried in ${seconds} s`;

export type SqsBatchHandler = (event: SqsEvent, context: LambdaContext) => Promise<SqsBatchResponse>;

/** The event of the start function (`lambda:InvokeFunction`). */
export const startEvent = z.object({
  workflow: z.string().check(z.minLength(1, "must name a registered workflow")),
  args: z._default(z.array(z.unknown()), []),
  /** Checked by the engine (`InvalidIdempotencyKeyError`: 1 to 256 printable characters). */
  idempotencyKey: z.optional(z.string()),
  /** Checked by the engine (`validateTags`). */
  tags: z.optional(runTagsSchema),
  /** W3C trace context of the caller: the run's spans go under it (see the README, Observability). */
  traceparent: z.optional(z.string().check(z.maxLength(128))),
});
export type StartEvent = z.input<typeof startEvent>;
export type StartResponse = { runId: string; created: boolean };
export type StartHandler = (event: unknown, context: LambdaContext) => Promise<StartResponse>;

/**
 * The handlers of one bundle, sharing one runtime (clients, caches). The CDK construct bundles an entry
 * file that exports `workflowHandler`, `stepHandler`, `startHandler`, `webhookHandler`, `sweeperHandler`
 * and `reaperHandler`.
 * @example
 * import { createHandlers } from "tsworkflow/aws";
 * import { onboarding } from "./workflows.ts";
 * export const { workflowHandler, stepHandler, startHandler, webhookHandler, sweeperHandler, reaperHandler } =
 *   createHandlers({ workflows: [onboarding] });
 * @throws ConfigurationError at cold start when an environment variable is missing or wrong
 */
export function createHandlers(
  registry: WorkflowRegistry,
  options: HandlerOptions = {},
): {
  workflowHandler: SqsBatchHandler;
  stepHandler: SqsBatchHandler;
  startHandler: StartHandler;
  webhookHandler: WebhookHandler;
  sweeperHandler: SweeperHandler;
  reaperHandler: ReaperHandler;
} {
  const shared = { ...options, runtime: runtimeFor(registry, options) };
  return {
    workflowHandler: createWorkflowHandler(registry, shared),
    stepHandler: createStepHandler(registry, shared),
    startHandler: createStartHandler(registry, shared),
    webhookHandler: createWebhookHandler(registry, shared),
    sweeperHandler: createSweeperHandler(registry, shared),
    reaperHandler: createReaperHandler(registry, shared),
  };
}

/**
 * The workflow function: takes batches from the FIFO workflow queue and runs one activation per
 * record, in order within each run (message group), runs in parallel. A failed activation is
 * reported in `batchItemFailures` with every later record of its run, so SQS delivers them again in
 * order; the others are deleted. Configure the event source mapping with
 * `ReportBatchItemFailures`.
 * @example
 * import { createWorkflowHandler } from "tsworkflow/aws";
 * import { onboarding } from "./workflows.ts";
 * export const workflowHandler = createWorkflowHandler({ workflows: [onboarding] });
 * @throws ConfigurationError at cold start when an environment variable is missing or wrong
 */
export function createWorkflowHandler(
  registry: WorkflowRegistry,
  options: HandlerOptions = {},
): SqsBatchHandler {
  const runtime = runtimeFor(registry, options);
  return async (event, context) => {
    const groups = new Map<string, SqsRecord[]>();
    for (const record of event.Records) {
      const group = record.attributes.MessageGroupId ?? record.messageId;
      const list = groups.get(group) ?? [];
      list.push(record);
      groups.set(group, list);
    }
    return inBatch(runtime, context, (logger, failed) =>
      [...groups.values()].map(async (records) => {
        for (const [index, record] of records.entries()) {
          let message: QueueMessage | undefined;
          try {
            message = parseQueueMessage(record.body);
            if (message.kind !== "activation") {
              throw new InvalidMessageError(`A ${message.kind} message reached the workflow queue.`);
            }
            logger.debug("activation", {
              runId: message.task.runId,
              cause: message.task.cause,
              messageId: record.messageId,
            });
            // A record received before may be an activation that died after its commit: it re-sends.
            const redelivered = message.task.redelivered === true || receivedBefore(record);
            await runtime.engine.activate({ ...message.task, redelivered });
          } catch (error) {
            const runId =
              message?.kind === "activation" ? message.task.runId : record.attributes.MessageGroupId;
            const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? "1");
            const details = { runId, messageId: record.messageId, receiveCount, ...errorDetails(error) };
            if (isPoison(error)) {
              logger.error(
                "a message that is not a tsworkflow activation goes to the dead-letter queue",
                details,
              );
              await holdBack(runtime, runtime.config.workflowQueueUrl, record, 0);
            } else if (error instanceof WorkflowNotFoundError) {
              // A deploy half done: the function that knows this workflow is not live yet.
              const seconds = unknownWorkflowBackoffSeconds(receiveCount, options.deployBackoffSeconds);
              logger.warn(notInThisCode("workflow", seconds), details);
              await holdBack(runtime, runtime.config.workflowQueueUrl, record, seconds);
            } else {
              logger.error("activation failed; SQS delivers it again", details);
            }
            for (const later of records.slice(index)) failed.push(later.messageId);
            return;
          }
        }
      }),
    );
  };
}

/**
 * The step function: takes batches from the standard step queue and, for each record in parallel,
 * runs one attempt of a step (storing its outcome and waking the run) or forwards a due timer to the
 * workflow queue (a timer that arrives early is delayed again). Failed records are reported in
 * `batchItemFailures`.
 * @example
 * import { createStepHandler } from "tsworkflow/aws";
 * export const stepHandler = createStepHandler({ workflows: [onboarding] });
 * @throws ConfigurationError at cold start when an environment variable is missing or wrong
 */
export function createStepHandler(registry: WorkflowRegistry, options: HandlerOptions = {}): SqsBatchHandler {
  const runtime = runtimeFor(registry, options);
  const clock = options.clock ?? systemClock;
  const listed = registry.steps && new Set(registry.steps.map((definition) => definition.stepName));
  const knows = (stepName: string) =>
    listed ? listed.has(stepName) : runtime.engine.registry.findStep(stepName) !== undefined;
  const handle = async (record: SqsRecord, message: QueueMessage): Promise<void> => {
    if (message.kind === "step") {
      if (!knows(message.task.stepName)) {
        // A deploy half done: this code does not know the step yet. Never record a failure for it.
        const deferrals = message.deferrals ?? 0;
        // After about a day of deferrals, the task goes to the step DLQ (redrive it once code knows the step).
        if (deferrals >= MAX_STEP_DEFERRALS) throw new StepNotFoundError(message.task.stepName);
        const seconds = unknownStepDelaySeconds(deferrals);
        getLogger().warn(notInThisCode("step", seconds), {
          runId: message.task.runId,
          stepId: message.task.stepId,
          stepName: message.task.stepName,
          deferrals,
        });
        await runtime.queue.deferStep(message, seconds);
        return;
      }
      // After a step its run waits on alone, this invocation goes on with the run (no wake-up message).
      await runtime.engine.executeStep(await runtime.queue.stepTaskOf(message), {
        continueRun: true,
        redelivered: receivedBefore(record),
      });
      return;
    }
    if (message.kind === "tick") {
      if (!registry.schedules)
        throw new InvalidMessageError(
          `Declare schedule "${message.schedule}" in createHandlers({ schedules }).`,
        );
      await registry.schedules.tick(runtime, message, clock.now());
      return;
    }
    if (message.kind === "timer" && message.fireAt > clock.now()) {
      // Early (SQS delays a message 15 minutes at most): delayed again.
      const seconds = Math.ceil((message.fireAt - clock.now()) / 1000);
      await runtime.queue.sendTimer(message, Math.min(MAX_SQS_DELAY_SECONDS, seconds));
      return;
    }
    // A due timer's activation runs here: its commit is conditional, so it may overlap another activation
    // of the run. Should it fail, it goes to the workflow queue, deduplicated on the carrying message (an
    // SQS duplicate is dropped, a re-armed timer is not).
    await runtime.engine.activateHere({ ...message.task, redelivered: receivedBefore(record) }, (again) =>
      runtime.queue.sendActivation(again, deduplicationId(`${message.task.runId}:${record.messageId}`)),
    );
  };
  return async (event, context) =>
    inBatch(runtime, context, (logger, failed) =>
      event.Records.map(async (record) => {
        let message: QueueMessage | undefined;
        try {
          message = parseQueueMessage(record.body);
          await handle(record, message);
        } catch (error) {
          const task = message?.kind === "step" ? message.task : undefined;
          const details = {
            runId: message && "task" in message ? message.task.runId : undefined,
            ...(task && { workflowName: task.workflowName, stepId: task.stepId, stepName: task.stepName }),
            messageId: record.messageId,
            receiveCount: record.attributes.ApproximateReceiveCount,
            ...errorDetails(error),
          };
          failed.push(record.messageId);
          if (isPoison(error) || error instanceof StepNotFoundError) {
            logger.error("a step message that cannot run here goes to the dead-letter queue", details);
            await holdBack(runtime, runtime.config.stepQueueUrl, record, 0);
          } else logger.error("step message failed; SQS delivers it again", details);
        }
      }),
    );
}

/**
 * One invocation of a queue function: `handle` starts the work of each record (or group of records) and
 * adds the message ids of those that failed to `failed`. The runs it goes on with run their next steps here
 * too, while the invocation has time for them (see InlineBudget).
 */
async function inBatch(
  runtime: AwsRuntime,
  context: LambdaContext,
  handle: (logger: Logger, failed: string[]) => Promise<void>[],
): Promise<SqsBatchResponse> {
  const failed: string[] = [];
  const ended = runtime.inline?.begin(context.getRemainingTimeInMillis());
  await Promise.all(handle(loggerFor(context), failed)).finally(ended);
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}

/**
 * The start function, for other Lambdas to invoke (`lambda:InvokeFunction`) with
 * `{ workflow, args, idempotencyKey }`; answers `{ runId, created }`. The event is validated with
 * zod and the arguments with the workflow's own schema; errors come back to the caller as the
 * function error (`errorType` is the tsworkflow error's name).
 * @example
 * import { createStartHandler } from "tsworkflow/aws";
 * export const startHandler = createStartHandler({ workflows: [onboarding] });
 * @throws ConfigurationError at cold start when an environment variable is missing or wrong
 */
export function createStartHandler(registry: WorkflowRegistry, options: HandlerOptions = {}): StartHandler {
  const runtime = runtimeFor(registry, options);
  return async (event, context) => {
    const logger = loggerFor(context);
    const parsed = z.safeParseWithMessages(startEvent, event);
    if (!parsed.success) {
      const problems = parsed.error.issues
        .map((issue) => `${issue.path.join(".") || "(event)"}: ${issue.message}`)
        .join("; ");
      throw new InvalidMessageError(
        `Invalid start event: ${problems}. Send { "workflow": "<name>", "args": [...], "idempotencyKey"?: "<key>", "tags"?: { "<key>": "<value>" } }.`,
      );
    }
    const { workflow, args, ...options } = parsed.data;
    const result = await runtime.engine.start(workflow, args, options);
    logger.info(result.created ? "run started" : "run already started with this idempotency key", {
      runId: result.runId,
      workflowName: workflow,
    });
    return { runId: result.runId, created: result.created };
  };
}

/** A Lambda Function URL (payload 2.0) request, as much of it as the webhook handler reads. */
export interface FunctionUrlEvent {
  rawPath: string;
  body?: string;
  isBase64Encoded?: boolean;
  headers?: Record<string, string | undefined>;
  requestContext: { http: { method: string } };
}

export interface FunctionUrlResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export type WebhookHandler = (event: FunctionUrlEvent, context: LambdaContext) => Promise<FunctionUrlResult>;

/**
 * `POST /hooks/<token>` behind a Lambda Function URL: resumes the run whose `createWebhook()` made the
 * token. When `TSWORKFLOW_WEBHOOK_SECRET` (or `options.webhookSecret`) is set, calls must be signed
 * (see `signWebhook`); a token works once.
 * @example
 * export const { webhookHandler } = createHandlers({ workflows: [approvalOrder] });
 */
export function createWebhookHandler(
  registry: WorkflowRegistry,
  options: HandlerOptions & { webhookSecret?: string } = {},
): WebhookHandler {
  const runtime = runtimeFor(registry, options);
  const secret = options.webhookSecret ?? process.env.TSWORKFLOW_WEBHOOK_SECRET;
  return async (event, context) => {
    const logger = loggerFor(context);
    const reply = (statusCode: number, body: unknown): FunctionUrlResult => ({
      statusCode,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const match = /^\/hooks\/([^/]+)$/.exec(event.rawPath);
    if (!match || event.requestContext.http.method !== "POST")
      return reply(404, { ok: false, error: "POST /hooks/<token>" });
    const body = event.isBase64Encoded
      ? Buffer.from(event.body ?? "", "base64").toString("utf8")
      : (event.body ?? "");
    const headers = Object.fromEntries(
      Object.entries(event.headers ?? {}).map(([key, value]) => [key.toLowerCase(), value]),
    );
    const result = await handleWebhook(
      { token: decodeURIComponent(match[1] as string), body, headers },
      {
        store: runtime.engine.store,
        sendEvent: (runId, name, payload, signal) => runtime.engine.sendEvent(runId, name, payload, signal),
        ...(secret ? { secret } : {}),
      },
    );
    logger.info("webhook call", {
      status: result.status,
      ...(result.body.runId ? { runId: result.body.runId } : {}),
    });
    return reply(result.status, result.body);
  };
}
