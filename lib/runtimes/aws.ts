import type { S3Client } from "@aws-sdk/client-s3";
import type { SchedulerClient } from "@aws-sdk/client-scheduler";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBEngineStore } from "../adapters/aws/dynamodb-engine-store.ts";
import { DynamoDBClient } from "../adapters/aws/dynamodb-sdk.ts";
import { InlineBudget, type InlineBudgetOptions } from "../adapters/aws/inline-budget.ts";
import { S3Payloads } from "../adapters/aws/s3-payloads.ts";
import { SqsSchedulerTimers } from "../adapters/aws/scheduler-timers.ts";
import { SqsTaskQueue } from "../adapters/aws/sqs-queue.ts";
import type { AwsConfig } from "../aws/config.ts";
import { optional } from "../core/optional.ts";
import type { Registry } from "../core/registry.ts";
import { Engine } from "../engine/engine.ts";
import type { RunLimits } from "../engine/run-limits.ts";
import type { StepLimits } from "../engine/step-limits.ts";
import type { TelemetryFactory } from "../observability/engine-telemetry.ts";
import { type Clock, systemClock } from "../ports/clock.ts";
import type { EventStore } from "../ports/event-store.ts";

/** The AWS SDK clients the runtime uses. */
export interface AwsClients {
  dynamodb: DynamoDBClient;
  sqs: SQSClient;
  /**
   * Omitted: one is made on first use, when a timer beyond 15 minutes is set or a timer is cancelled (most
   * invocations do neither, and the Scheduler SDK costs cold start time).
   */
  scheduler?: SchedulerClient;
  /** Omitted: one is made on first use, when a payload over 64 KB is read or written. */
  s3?: S3Client;
}

/** Options of {@link createAwsRuntime}: everything defaults to what `config` describes. */
export interface AwsRuntimeOptions {
  /** Clients to use instead of new ones (tests add middleware; apps share connection pools). */
  clients?: Partial<AwsClients>;
  /** @default the system clock */
  clock?: Clock;
  /**
   * Traces and metrics: `openTelemetry` records them through `@opentelemetry/api` (which the function must
   * then have, with an SDK or the ADOT layer). Opt-in on Lambda, so that a bundle that does not trace stays lean.
   * @default none
   */
  telemetry?: TelemetryFactory;
  /** A store to use instead of the DynamoDB store (tests wrap it to inject faults). */
  store?: EventStore;
  /**
   * Enforces `workflow(..., { concurrency, rateLimit })` on AWS: `new RunLimits({ slots, rates })` with a
   * `DynamoDBSlotStore` and a `DynamoDBRateLimitStore` on the kit's table. Opt-in, so that a bundle without
   * limits carries none of their code.
   * @default none: `start()` of a workflow that declares a limit throws a `ConfigurationError`
   * @example
   * import { RunLimits, StepLimits } from "tsworkflow/engine";
   * import { createHandlers, DynamoDBRateLimitStore, DynamoDBSlotStore, loadConfig } from "tsworkflow/aws";
   * import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
   * const table = { client: new DynamoDBClient({}), tableName: loadConfig().tableName };
   * const slots = new DynamoDBSlotStore(table);
   * const rates = new DynamoDBRateLimitStore(table);
   * export const handlers = createHandlers(
   *   { workflows: [syncAccount] },
   *   { runLimits: new RunLimits({ slots, rates }), stepLimits: new StepLimits({ slots, rates, parking: slots }) },
   * );
   */
  runLimits?: RunLimits | undefined;
  /**
   * Enforces `step(..., { concurrency, rateLimit })` on AWS: `new StepLimits({ slots, rates, parking: slots })`
   * with a `DynamoDBSlotStore` and a `DynamoDBRateLimitStore` (see `runLimits` for the example). A step
   * attempt that must wait goes back to the step queue with an SQS delay (its turn under a rate limit; its
   * re-check, a third of the slot lease, while it waits for a slot) and a released slot sends the first
   * tasks in line again at once. Opt-in, like `runLimits`.
   * @default none: an attempt of a step that declares a limit fails with a `ConfigurationError`
   */
  stepLimits?: StepLimits | undefined;
  /**
   * Runs a run's lone next step inside the workflow invocation that started it (one commit per step, no
   * queue hop, no step invocation) while the invocation has time left for it (see `InlineBudget`); steps
   * of a `Promise.all`, steps with `inline: false` or a concurrency or rate limit go through the step queue.
   * An object keeps them on and tunes the time budget (`marginMs`, `unknownStepMs`).
   * @default true
   * @example
   * import { createHandlers } from "tsworkflow/aws";
   * export const handlers = createHandlers({ workflows: [onboarding] }, { inlineSteps: false });
   */
  inlineSteps?: boolean | Pick<InlineBudgetOptions, "marginMs" | "unknownStepMs">;
  /**
   * Where runs find their workflows and steps (see `Registry`): the listed workflows are registered there.
   * @default the default registry
   */
  registry?: Registry;
}

/** The engine and its AWS adapters, wired from one configuration. */
export interface AwsRuntime {
  config: AwsConfig;
  clients: AwsClients;
  store: EventStore;
  /** Large payloads in S3 (offloading only when the configuration names a payload bucket). */
  payloads: S3Payloads;
  queue: SqsTaskQueue;
  timers: SqsSchedulerTimers;
  engine: Engine;
  /** Which steps a workflow invocation runs itself; absent with `inlineSteps: false`. */
  inline?: InlineBudget;
}

/**
 * New SDK clients for `config` (region and endpoint overrides): DynamoDB and SQS, which every function
 * uses. Created once per cold start, so that connections are reused across invocations. The Scheduler and
 * S3 clients are made on first use (see {@link AwsClients}).
 */
export function createAwsClients(config: Pick<AwsConfig, "region" | "endpoints">): AwsClients {
  return {
    dynamodb: new DynamoDBClient(clientSettings(config, config.endpoints.dynamodb)),
    sqs: new SQSClient(clientSettings(config, config.endpoints.sqs)),
  };
}

/** An SDK client's settings: the region, and the endpoint override when there is one. */
export function clientSettings(config: Pick<AwsConfig, "region">, endpoint: string | undefined) {
  return { region: config.region, ...(endpoint ? { endpoint } : {}) };
}

/**
 * Wires the engine to DynamoDB, SQS and EventBridge Scheduler.
 * @example
 * import { createAwsRuntime, loadConfig } from "tsworkflow/aws";
 * const { engine } = createAwsRuntime(loadConfig());
 */
export function createAwsRuntime(config: AwsConfig, options: AwsRuntimeOptions = {}): AwsRuntime {
  const given = options.clients ?? {};
  const created = given.dynamodb && given.sqs ? undefined : createAwsClients(config);
  const clients: AwsClients = {
    dynamodb: given.dynamodb ?? (created as AwsClients).dynamodb,
    sqs: given.sqs ?? (created as AwsClients).sqs,
    ...optional("scheduler", given.scheduler),
    ...optional("s3", given.s3),
  };
  const payloads = createPayloads(config, clients.s3);
  const store =
    options.store ??
    new DynamoDBEngineStore({
      client: clients.dynamodb,
      tableName: config.tableName,
      ttlDays: config.ttlDays,
      payloads,
    });
  const { inlineSteps = true } = options;
  const inline =
    inlineSteps === false
      ? undefined
      : new InlineBudget({
          clock: options.clock ?? systemClock,
          ...(inlineSteps === true ? {} : inlineSteps),
        });
  const queue = new SqsTaskQueue({
    client: clients.sqs,
    workflowQueueUrl: config.workflowQueueUrl,
    stepQueueUrl: config.stepQueueUrl,
    payloads,
    ...optional("inline", inline),
  });
  const timers = new SqsSchedulerTimers({
    queue,
    scheduler: clients.scheduler,
    schedulerConfig: clientSettings(config, config.endpoints.scheduler),
    stepQueueArn: config.stepQueueArn,
    scheduleGroup: config.scheduleGroup,
    schedulerRoleArn: config.schedulerRoleArn,
    ...(config.timerDeadLetterQueueArn ? { deadLetterQueueArn: config.timerDeadLetterQueueArn } : {}),
    ...optional("clock", options.clock),
  });
  const engine = new Engine({
    store,
    queue,
    timers,
    ...optional("clock", options.clock),
    ...optional("telemetry", options.telemetry),
    ...optional("registry", options.registry),
    runLimits: options.runLimits,
    stepLimits: options.stepLimits,
    inlineSteps: inline !== undefined,
  });
  // A Lambda keeps nothing between invocations: waiting steps wait in the step queue (SQS delays up to 900 s).
  options.stepLimits?.waitInQueue((task, delaySeconds) => queue.enqueueStep(task, delaySeconds));
  return { config, clients, store, payloads, queue, timers, engine, ...optional("inline", inline) };
}

/**
 * The payload store of `config`: S3 is loaded on first use. Emulators and LocalStack serve buckets
 * on paths, not on subdomains.
 */
export function createPayloads(
  config: Pick<AwsConfig, "region" | "endpoints" | "payloadBucket">,
  client?: S3Client,
): S3Payloads {
  const endpoint = config.endpoints.s3;
  return new S3Payloads({
    ...optional("client", client),
    clientConfig: { region: config.region, ...(endpoint ? { endpoint, forcePathStyle: true } : {}) },
    ...(config.payloadBucket ? { bucket: config.payloadBucket } : {}),
  });
}
