import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import { SchedulerClient } from "@aws-sdk/client-scheduler";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Context } from "aws-lambda";
import { DynamoDBStorage } from "../../../lib/adapters/aws/dynamodb-storage.ts";
import { S3Payloads } from "../../../lib/adapters/aws/s3-payloads.ts";
import { createTable } from "../../../lib/adapters/aws/table-schema.ts";
import type { AwsConfig } from "../../../lib/aws/config.ts";
import {
  createReaperHandler,
  createStartHandler,
  createStepHandler,
  createSweeperHandler,
  createWorkflowHandler,
  type HandlerOptions,
  type ReaperHandler,
  type SqsBatchHandler,
  type StartHandler,
  type SweeperHandler,
  type WorkflowRegistry,
} from "../../../lib/aws/lambda/handlers.ts";
import type { WorkflowEvent } from "../../../lib/core/events.ts";
import type { Registry } from "../../../lib/core/registry.ts";
import type { RunLimits } from "../../../lib/engine/run-limits.ts";
import type { StepLimits } from "../../../lib/engine/step-limits.ts";
import type { TelemetryFactory } from "../../../lib/observability/engine-telemetry.ts";
import type { Clock } from "../../../lib/ports/clock.ts";
import type { EventStore, RunRecord, RunStatus } from "../../../lib/ports/event-store.ts";
import type { AwsClients } from "../../../lib/runtimes/aws.ts";
import { type DynamoDBLocal, folderDynamoDBLocal } from "./dynamodb-local.ts";
import { EventSourceMapping } from "./event-source-mapping.ts";
import { FakeScheduler } from "./fake-scheduler.ts";
import { TEST_CREDENTIALS, TEST_REGION } from "./free-port.ts";
import { RequestCounter } from "./request-counter.ts";
import { type S3Emulator, startS3 } from "./s3.ts";
import { type KitQueues, type SqsEmulator, startSqs } from "./sqs.ts";
import { waitFor } from "./wait.ts";

export const SCHEDULE_GROUP = "tsworkflow";
export const SCHEDULER_ROLE_ARN = "arn:aws:iam::000000000000:role/tsworkflow-scheduler";
/** The payload bucket of every deployment (the construct's is one per stack). */
export const PAYLOAD_BUCKET = "tsworkflow-payloads";

/** Real time plus an offset that tests move forward to skip long sleeps. */
export class OffsetClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
}

/** The emulators, started once per test file (DynamoDB Local: see `folderDynamoDBLocal`). */
export interface Emulators {
  dynamo: DynamoDBLocal;
  sqs: SqsEmulator;
  scheduler: FakeScheduler;
  s3: S3Emulator;
  clock: OffsetClock;
  tableName: string;
  stop(): Promise<void>;
}

export async function startEmulators(tableName = "tsworkflow"): Promise<Emulators> {
  const clock = new OffsetClock();
  const [dynamo, sqs, s3] = await Promise.all([folderDynamoDBLocal(), startSqs(), startS3()]);
  await s3.createBucket(PAYLOAD_BUCKET);
  const delivery = sqs.client();
  const scheduler = new FakeScheduler({
    groups: [SCHEDULE_GROUP],
    now: clock.now(),
    deliver: async (arn, input) => {
      await delivery.send(new SendMessageCommand({ QueueUrl: sqs.urlOfArn(arn), MessageBody: input }));
    },
  });
  await scheduler.start();
  const admin = dynamo.client();
  await createTable(admin, tableName);
  admin.destroy();
  return {
    dynamo,
    sqs,
    scheduler,
    s3,
    clock,
    tableName,
    async stop() {
      delivery.destroy();
      await scheduler.stop();
      await Promise.all([sqs.stop(), dynamo.stop(), s3.stop()]);
    },
  };
}

/** Options of {@link deployStack}. */
export interface StackOptions {
  /** Seconds before a received, undeleted message comes back. @default 2 */
  visibilityTimeoutSeconds?: number;
  /** Receives before SQS moves a message to the DLQ. @default 5 */
  maxReceiveCount?: number;
  /** The functions' timeout (an invocation still running then fails its batch). @default 20000 */
  functionTimeoutMs?: number;
  /** Parallel pollers of each queue. @default { workflow: 2, step: 4 } */
  concurrency?: { workflow?: number; step?: number };
  /** The functions' telemetry (see `HandlerOptions.telemetry`). @default none */
  telemetry?: TelemetryFactory;
  /** Wraps the store the step function uses (to inject crashes). */
  wrapStepStore?: (store: EventStore) => EventStore;
  /** Wraps the store the workflow function uses (to inject crashes). */
  wrapWorkflowStore?: (store: EventStore) => EventStore;
  /** Adds middleware to the functions' SQS client (to inject duplicates). */
  decorateSqs?: (client: SQSClient) => void;
  /** Queues and configuration made beforehand by {@link createKit} (to build handlers from the environment). */
  kit?: Kit;
  /**
   * Large payloads go to the S3 emulator's bucket (as with the construct); false: no payload bucket,
   * payloads capped at 255 KB. @default true
   */
  payloadBucket?: boolean;
  /** The step function's registry, when its bundle runs fewer steps than the others (a deploy half done). */
  stepRegistry?: WorkflowRegistry;
  /** The first backoff of an activation whose workflow the code does not know. @default 60 */
  deployBackoffSeconds?: number;
  /** Where the functions find workflows and steps (code of one deploy, beside other deploys' in one test). */
  registry?: Registry;
  /** Run concurrency for each function's runtime (a new `RunLimits` per function, as each Lambda makes its own). */
  runLimits?: () => RunLimits;
  /** Step concurrency and rate limits for each function's runtime (a new `StepLimits` per function). */
  stepLimits?: () => StepLimits;
  /** Whether the workflow function runs a run's lone next step itself (see `inlineSteps`). @default true */
  inlineSteps?: HandlerOptions["inlineSteps"];
  /**
   * Lambda's instance churn: the chance that an invocation lands on a fresh instance of its function (new
   * runtime, empty caches: the run is replayed from the log) that takes the place of an idle one (Lambda
   * recycles instances), rather than on an idle one, which is picked at random. 0: warm instances whenever
   * one is idle; 1: every invocation cold. @default 0.3
   */
  churn?: number;
  /** Handlers built elsewhere (e.g. imported from functions/examples.ts) instead of by the factories here. */
  handlers?: { workflowHandler: SqsBatchHandler; stepHandler: SqsBatchHandler; startHandler: StartHandler };
}

/**
 * A function's instances, as Lambda runs them: one invocation at a time per instance; an invocation goes to
 * a new instance when none is idle (scaling) or, with probability `churn`, to a new instance that replaces
 * an idle one (recycling: idle instances do not pile up, as Lambda reclaims them), else to an idle instance
 * picked at random.
 */
export function instancesOf(
  make: () => SqsBatchHandler,
  churn: number,
): SqsBatchHandler & { count(): number } {
  const instances: { handler: SqsBatchHandler; busy: boolean }[] = [];
  const handler = async (event: Parameters<SqsBatchHandler>[0], context: Parameters<SqsBatchHandler>[1]) => {
    const idle = instances.filter((instance) => !instance.busy);
    let instance = idle[Math.floor(Math.random() * idle.length)];
    if (!instance || Math.random() < churn) {
      // Recycling replaces the idle instance; scaling (none idle) adds one.
      if (instance) instances.splice(instances.indexOf(instance), 1);
      instance = { handler: make(), busy: false };
      instances.push(instance);
    }
    instance.busy = true;
    try {
      return await instance.handler(event, context);
    } finally {
      instance.busy = false;
    }
  };
  return Object.assign(handler, { count: () => instances.length });
}

/** Fresh queues and the configuration that points at them and at the emulators. */
export interface Kit {
  queues: KitQueues;
  config: AwsConfig;
}

export function createKit(
  emulators: Emulators,
  options: Pick<StackOptions, "visibilityTimeoutSeconds" | "maxReceiveCount" | "payloadBucket"> = {},
): Kit {
  deployments += 1;
  const { sqs, dynamo, scheduler, s3 } = emulators;
  const queues = sqs.createKitQueues(`e2e${deployments}`, {
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 2,
    maxReceiveCount: options.maxReceiveCount ?? 5,
  });
  const config: AwsConfig = {
    tableName: emulators.tableName,
    workflowQueueUrl: queues.workflowQueueUrl,
    stepQueueUrl: queues.stepQueueUrl,
    stepQueueArn: queues.stepQueueArn,
    scheduleGroup: SCHEDULE_GROUP,
    schedulerRoleArn: SCHEDULER_ROLE_ARN,
    region: TEST_REGION,
    endpoints: {
      dynamodb: dynamo.endpoint,
      sqs: sqs.endpoint,
      scheduler: scheduler.endpoint,
      s3: s3.endpoint,
    },
    ttlDays: 30,
    timerDeadLetterQueueArn: queues.timerDlqArn,
    sweepStaleAfterSeconds: 3600,
    ...(options.payloadBucket === false ? {} : { payloadBucket: PAYLOAD_BUCKET }),
  };
  return { queues, config };
}

/** One "deployment": fresh queues, the three functions built by the real factories, and their event source mappings. */
export interface Stack {
  config: AwsConfig;
  queues: KitQueues;
  counter: RequestCounter;
  clients: AwsClients & { s3: S3Client; scheduler: SchedulerClient };
  /** A store reading the same table (for assertions). */
  store: DynamoDBStorage;
  workflowHandler: SqsBatchHandler;
  stepHandler: SqsBatchHandler;
  startHandler: StartHandler;
  sweeperHandler: SweeperHandler;
  reaperHandler: ReaperHandler;
  workflowMapping: EventSourceMapping;
  stepMapping: EventSourceMapping;
  /** Deploys new code to the step function: a new handler with `registry` behind the same queue. */
  deployStepFunction(registry: WorkflowRegistry): Promise<void>;
  /** Runs the sweeper function once, as its schedule would. */
  sweep(): ReturnType<SweeperHandler>;
  /** Invokes the start function as `lambda:InvokeFunction` would. */
  invokeStart(event: unknown): Promise<{ runId: string; created: boolean }>;
  /** Moves the clock forward and lets the fake Scheduler fire what is due. */
  skip(ms: number): Promise<void>;
  waitForStatus(runId: string, status: RunStatus | RunStatus[], timeoutMs?: number): Promise<RunRecord>;
  events(runId: string): Promise<WorkflowEvent[]>;
  stop(): Promise<void>;
}

let deployments = 0;

export function lambdaContext(functionName: string): Context {
  const requestId = crypto.randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${TEST_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: "512",
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `2026/01/01/[$LATEST]${requestId}`,
    getRemainingTimeInMillis: () => 30_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/**
 * Creates a fresh set of queues and the three functions (built by the real handler factories, with
 * counted clients), and starts the pollers that feed them.
 */
export function deployStack(
  emulators: Emulators,
  registry: WorkflowRegistry,
  options: StackOptions = {},
): Stack {
  const { sqs, dynamo, scheduler, clock } = emulators;
  const { queues, config } = options.kit ?? createKit(emulators, options);
  const counter = new RequestCounter();
  const settings = (endpoint: string) => ({
    endpoint,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 3,
  });
  const clients: AwsClients & { s3: S3Client; scheduler: SchedulerClient } = {
    dynamodb: new DynamoDBClient(settings(dynamo.endpoint)),
    sqs: new SQSClient(settings(sqs.endpoint)),
    scheduler: new SchedulerClient(settings(scheduler.endpoint)),
    s3: emulators.s3.client(),
  };
  counter.watch(clients.dynamodb, "dynamodb");
  counter.watch(clients.s3, "s3");
  counter.watch(clients.sqs, "sqs");
  counter.watch(clients.scheduler, "scheduler");
  options.decorateSqs?.(clients.sqs);
  const base = (wrap?: (store: EventStore) => EventStore): HandlerOptions => {
    const store = new DynamoDBStorage({
      client: clients.dynamodb,
      tableName: config.tableName,
      payloads: payloadsOf(config, clients.s3),
    });
    return {
      config,
      clients,
      clock,
      ...(options.telemetry ? { telemetry: options.telemetry } : {}),
      ...(options.deployBackoffSeconds === undefined
        ? {}
        : { deployBackoffSeconds: options.deployBackoffSeconds }),
      ...(wrap ? { store: wrap(store) } : { store }),
      ...(options.registry ? { registry: options.registry } : {}),
      ...(options.runLimits ? { runLimits: options.runLimits() } : {}),
      ...(options.stepLimits ? { stepLimits: options.stepLimits() } : {}),
      ...(options.inlineSteps === undefined ? {} : { inlineSteps: options.inlineSteps }),
    };
  };
  // Each function is its own "Lambda": instances with their own runtime, store and caches, sharing the
  // clients' counters; an invocation lands on a fresh instance or an idle one (see `churn`).
  const churn = options.churn ?? 0.3;
  const workflowHandler =
    options.handlers?.workflowHandler ??
    instancesOf(() => createWorkflowHandler(registry, base(options.wrapWorkflowStore)), churn);
  const stepHandler =
    options.handlers?.stepHandler ??
    instancesOf(
      () => createStepHandler(options.stepRegistry ?? registry, base(options.wrapStepStore)),
      churn,
    );
  const startHandler = options.handlers?.startHandler ?? createStartHandler(registry, base());
  const sweeperHandler = createSweeperHandler(registry, base());
  const reaperHandler = createReaperHandler(registry, base());
  const pollerClient = sqs.client();
  const timeoutMs = options.functionTimeoutMs ?? 20_000;
  const visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 2;
  const workflowMapping = new EventSourceMapping({
    client: pollerClient,
    queueUrl: queues.workflowQueueUrl,
    queueArn: queues.workflowQueueArn,
    handler: workflowHandler,
    functionName: "tsworkflow-workflow",
    concurrency: options.concurrency?.workflow ?? 2,
    timeoutMs,
    visibilityTimeoutSeconds,
  }).start();
  const stepMappingFor = (handler: SqsBatchHandler) =>
    new EventSourceMapping({
      client: pollerClient,
      queueUrl: queues.stepQueueUrl,
      queueArn: queues.stepQueueArn,
      handler,
      functionName: "tsworkflow-step",
      concurrency: options.concurrency?.step ?? 4,
      timeoutMs,
      visibilityTimeoutSeconds,
    }).start();
  let stepMapping = stepMappingFor(stepHandler);
  const readClient = dynamo.client();
  const readS3 = emulators.s3.client();
  const store = new DynamoDBStorage({
    client: readClient,
    tableName: config.tableName,
    payloads: payloadsOf(config, readS3),
  });
  return {
    config,
    queues,
    counter,
    clients,
    store,
    workflowHandler,
    stepHandler,
    startHandler,
    sweeperHandler,
    reaperHandler,
    workflowMapping,
    get stepMapping() {
      return stepMapping;
    },
    async deployStepFunction(newRegistry) {
      await stepMapping.stop();
      stepMapping = stepMappingFor(createStepHandler(newRegistry, base(options.wrapStepStore)));
    },
    sweep: () => sweeperHandler({}, lambdaContext("tsworkflow-sweeper")),
    invokeStart: (event) => startHandler(event, lambdaContext("tsworkflow-start")),
    async skip(ms) {
      clock.offset += ms;
      await scheduler.advanceTo(clock.now());
    },
    async waitForStatus(runId, status, timeoutMs = 20_000) {
      const wanted = Array.isArray(status) ? status : [status];
      return waitFor(
        `run ${runId} to be ${wanted.join(" or ")}`,
        async () => {
          const run = await store.getRun(runId);
          return run && wanted.includes(run.status) ? run : undefined;
        },
        timeoutMs,
      );
    },
    events: (runId) => store.getEvents(runId),
    async stop() {
      await Promise.all([workflowMapping.stop(), stepMapping.stop()]);
      pollerClient.destroy();
      readClient.destroy();
      readS3.destroy();
      clients.s3.destroy();
      clients.dynamodb.destroy();
      clients.sqs.destroy();
      clients.scheduler.destroy();
    },
  };
}

/** The S3 payloads of a configuration, as the runtime builds them. */
export function payloadsOf(config: AwsConfig, client: S3Client): S3Payloads {
  return new S3Payloads({ client, ...(config.payloadBucket ? { bucket: config.payloadBucket } : {}) });
}

/** Events of a type, for assertions. */
export function ofType<T extends WorkflowEvent["type"]>(
  events: WorkflowEvent[],
  type: T,
): Extract<WorkflowEvent, { type: T }>[] {
  return events.filter((event): event is Extract<WorkflowEvent, { type: T }> => event.type === type);
}
