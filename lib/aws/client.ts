import type { S3Client } from "@aws-sdk/client-s3";
import type { SchedulerClient } from "@aws-sdk/client-scheduler";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBClient } from "../adapters/aws/dynamodb-sdk.ts";
import { DynamoDBStorage } from "../adapters/aws/dynamodb-storage.ts";
import { SchedulerConnection } from "../adapters/aws/scheduler-connection.ts";
import { SqsTaskQueue } from "../adapters/aws/sqs-queue.ts";
import { ConfigurationError } from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import type { AnyWorkflow, WorkflowArgs } from "../core/workflow.ts";
import { linkedPage, linkedRun } from "../engine/continuation.ts";
import { Engine } from "../engine/engine.ts";
import { retryRun } from "../engine/run-control.ts";
import type { RunLimits } from "../engine/run-limits.ts";
import { openTelemetry } from "../observability/telemetry.ts";
import type { Clock } from "../ports/clock.ts";
import type { RunPage, RunQuery, RunRecord } from "../ports/event-store.ts";
import type { GetRunOptions, StartOptions } from "../ports/runtime.ts";
import type { TaskQueue } from "../ports/task-queue.ts";
import type { Timers } from "../ports/timers.ts";
import { createPayloads } from "../runtimes/aws.ts";
import { checkStartOptions } from "../runtimes/call-options.ts";
import { getRunOrLast } from "../runtimes/follow-continuations.ts";
import { type ClientConfig, loadClientConfig } from "./config.ts";
import { type AwsScheduleInfo, scheduleControl } from "./schedules.ts";

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** Clients to use instead of new ones. */
  clients?: { dynamodb?: DynamoDBClient; sqs?: SQSClient; s3?: S3Client; scheduler?: SchedulerClient };
  /** @default the system clock */
  clock?: Clock;
  /**
   * Lets the client start workflows that declare `concurrency` or `rateLimit`: the same `RunLimits` as the
   * handlers' (`new RunLimits({ slots, rates })` on the kit's table), so that a new run takes its place in
   * line when it is created. `grantStart` grants what it needs.
   * @default none: starting a workflow that declares a limit throws a `ConfigurationError`
   */
  runLimits?: RunLimits;
}

/** Starts runs and reads them from any Lambda (or process) with access to the table and the workflow queue. */
export interface TsWorkflowClient {
  /**
   * Creates a run (once per idempotency key) and enqueues its first activation. Pass the workflow
   * definition (imported from its module) to have `args` checked at compile time and by its schema.
   * @returns the run id
   * @throws WorkflowInputError when the input does not match the workflow's schema (nothing is stored)
   * @throws IdempotencyConflictError when the key started a run with another input
   * @throws WorkflowNotFoundError for a name whose workflow is not imported in this process
   */
  start<W extends AnyWorkflow>(workflow: W, args: WorkflowArgs<W>, options?: StartOptions): Promise<string>;
  start(workflow: string, args: unknown[], options?: StartOptions): Promise<string>;
  /**
   * The run's document, or undefined for an unknown id; with `followContinuations`, the last run of its
   * `continueAsNew()` chain.
   * @example
   * const latest = await client.getRun(runId, { followContinuations: true });
   */
  getRun(runId: string, options?: GetRunOptions): Promise<RunRecord | undefined>;
  /**
   * The run's event log, in order; an empty array for an unknown id (as `getRun` answers undefined: the
   * client reads as a runtime does; the top-level `getEvents()` of `tsworkflow` throws `RunNotFoundError`).
   * @example
   * const types = (await client.getEvents(runId)).map((event) => event.type);
   */
  getEvents(runId: string): Promise<WorkflowEvent[]>;
  /**
   * One page of runs, newest first (by status and/or workflow); pass `nextCursor` back as `cursor`
   * for the next page. Needs what the construct's `grantRead` grants.
   * @throws InvalidRunQueryError for a bad limit or a cursor this table did not make
   */
  listRuns(query?: RunQuery): Promise<RunPage>;
  /**
   * Delivers an event to the run's `waitForEvent(eventName)` (kept until it waits, if it does not yet).
   * The wait's `schema` is not checked here: a payload that fails it is delivered, and the run fails with
   * `EventPayloadError` when it takes it (unless the workflow catches it).
   * @throws RunNotFoundError, InvalidRunStateError for a finished run
   */
  sendEvent(
    runId: string,
    eventName: string,
    payload: unknown,
    options?: { signalId?: string },
  ): Promise<{ delivered: boolean }>;
  /** Cancels the run (see `cancelRun` in the README). @throws InvalidRunStateError for a finished run */
  cancelRun(runId: string, reason?: string): Promise<void>;
  /** Retries a failed run from the step that failed it. @throws InvalidRunStateError unless failed */
  retryRun(runId: string): Promise<void>;
  /**
   * The deployment's schedules (declared with `awsSchedules`, created by the sweeper). The schedule
   * methods need `TSWORKFLOW_SCHEDULE_GROUP` (the construct's `grantScheduleControl` grants what they do).
   */
  listSchedules(): Promise<AwsScheduleInfo[]>;
  /**
   * Disables the schedule's EventBridge schedule (GetSchedule, then UpdateSchedule with `State:
   * DISABLED`): no tick fires until `resumeSchedule`, and the pause survives deploys.
   * @throws ConfigurationError for a schedule that does not exist
   */
  pauseSchedule(name: string): Promise<void>;
  /** Enables it again: ticks fire from now on (those that fell while paused are not caught up). */
  resumeSchedule(name: string): Promise<void>;
  /**
   * Starts a run now, outside the ticks, with the key `schedule:<name>:manual:<time>`. The schedule's
   * workflow must be imported in this process (as for `start` by name).
   * @throws WorkflowNotFoundError when it is not
   */
  triggerSchedule(name: string): Promise<{ runId: string }>;
  /**
   * Deletes the EventBridge schedule and its state. A schedule still declared in code comes back with
   * the next deploy that changes the declarations: remove it from the code to remove it for good.
   */
  deleteSchedule(name: string): Promise<void>;
  /** Releases the clients this client created. */
  close(): Promise<void>;
}

const noTimers: Timers = {
  schedule: async () => {
    throw new ConfigurationError(
      "The tsworkflow client starts runs; it does not schedule timers. Run activations in the workflow function.",
    );
  },
  cancel: async () => {},
};

/**
 * A client for other Lambdas: writes the run to DynamoDB and enqueues its first activation on the
 * FIFO workflow queue directly (no Lambda invoke in between); inputs over 64 KB go to the payload
 * bucket (`TSWORKFLOW_PAYLOAD_BUCKET`). The construct's `grantStart(grantee)` grants what starting and
 * reading a run needs, `grantRead` what listing needs, `grantRunControl` all of it.
 * @example
 * import { createClient } from "tsworkflow/aws";
 * import { onboarding } from "./workflows.ts";
 * const client = createClient(); // TSWORKFLOW_TABLE_NAME, TSWORKFLOW_WORKFLOW_QUEUE_URL, AWS_REGION
 * const runId = await client.start(onboarding, ["user_123"], { idempotencyKey: "onboard-user_123" });
 * const run = await client.getRun(runId);
 * @throws ConfigurationError when `config` is omitted and the environment lacks a variable
 */
export function createClient(
  config: ClientConfig = loadClientConfig(),
  options: ClientOptions = {},
): TsWorkflowClient {
  const settings = (endpoint: string | undefined) => ({
    region: config.region,
    ...(endpoint ? { endpoint } : {}),
  });
  const dynamodb = options.clients?.dynamodb ?? new DynamoDBClient(settings(config.endpoints.dynamodb));
  const sqs = options.clients?.sqs ?? new SQSClient(settings(config.endpoints.sqs));
  const payloads = createPayloads(config, options.clients?.s3);
  const store = new DynamoDBStorage({
    client: dynamodb,
    tableName: config.tableName,
    ...(config.ttlDays ? { ttlDays: config.ttlDays } : {}),
    payloads,
  });
  const sqsQueue = new SqsTaskQueue({
    client: sqs,
    workflowQueueUrl: config.workflowQueueUrl,
    stepQueueUrl: config.workflowQueueUrl,
  });
  const queue: TaskQueue = {
    enqueueActivation: (task) => sqsQueue.enqueueActivation(task),
    enqueueStep: async () => {
      throw new ConfigurationError("The tsworkflow client starts runs; it does not run steps.");
    },
  };
  const engine = new Engine({
    store,
    queue,
    timers: noTimers,
    ...(options.clock ? { clock: options.clock } : {}),
    // The span of start() continues the caller's trace.
    telemetry: openTelemetry,
    ...(options.runLimits ? { runLimits: options.runLimits } : {}),
  });
  let scheduler: SchedulerConnection | undefined;
  let control: ReturnType<typeof scheduleControl> | undefined;
  const schedules = () => {
    if (!config.scheduleGroup)
      throw new ConfigurationError(
        "Managing schedules needs the schedule group: set TSWORKFLOW_SCHEDULE_GROUP (the construct's ScheduleGroupName output).",
      );
    scheduler ??= new SchedulerConnection({
      client: options.clients?.scheduler,
      clientConfig: settings(config.endpoints.scheduler),
    });
    control ??= scheduleControl({
      dynamodb,
      scheduler,
      tableName: config.tableName,
      scheduleGroup: config.scheduleGroup,
      start: async (workflow, args, idempotencyKey) =>
        (await engine.start(workflow, args, { idempotencyKey })).runId,
      now: () => options.clock?.now() ?? Date.now(),
    });
    return control;
  };
  return {
    async start(workflow: AnyWorkflow | string, args: unknown[], startOptions: StartOptions = {}) {
      checkStartOptions(startOptions);
      const result = await engine.start(workflow, args, startOptions);
      return result.runId;
    },
    getRun: (runId, getOptions) =>
      getRunOrLast(async (id) => linkedRun(await store.getRun(id)), runId, getOptions),
    // Copies: the store keeps the logs it read (see `logCacheSize`), and a caller may change what it gets.
    getEvents: async (runId) => structuredClone(await store.getEvents(runId)),
    listRuns: async (query) => linkedPage(await store.listRuns(query)),
    sendEvent: (runId, eventName, payload, sendOptions) =>
      engine.sendEvent(runId, eventName, payload, sendOptions),
    cancelRun: (runId, reason) => engine.cancelRun(runId, reason),
    retryRun: (runId) => retryRun(engine, runId),
    listSchedules: () => schedules().listSchedules(),
    pauseSchedule: (name) => schedules().pauseSchedule(name),
    resumeSchedule: (name) => schedules().resumeSchedule(name),
    triggerSchedule: (name) => schedules().triggerSchedule(name),
    deleteSchedule: (name) => schedules().deleteSchedule(name),
    async close() {
      scheduler?.close();
      if (!options.clients?.dynamodb) dynamodb.destroy();
      if (!options.clients?.sqs) sqs.destroy();
      await payloads.close();
    },
  };
}
