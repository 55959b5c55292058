/**
 * tsworkflow on AWS: the DynamoDB event store, the SQS task queue, EventBridge Scheduler timers and
 * recurring schedules, the Lambda handler factories and a client for other Lambdas. Loads the AWS SDK; the core entry does not.
 */

export { DynamoDBEngineStore } from "../adapters/aws/dynamodb-engine-store.ts";
export type { DynamoDBRateLimitStoreOptions } from "../adapters/aws/dynamodb-rate-limit-store.ts";
export { DynamoDBRateLimitStore } from "../adapters/aws/dynamodb-rate-limit-store.ts";
export type {
  AwsScheduleState,
  DynamoDBScheduleStoreOptions,
} from "../adapters/aws/dynamodb-schedule-store.ts";
export { DynamoDBScheduleStore } from "../adapters/aws/dynamodb-schedule-store.ts";
export type { DynamoDBSlotStoreOptions } from "../adapters/aws/dynamodb-slot-store.ts";
export { DynamoDBSlotStore } from "../adapters/aws/dynamodb-slot-store.ts";
export type { DynamoDBStorageOptions } from "../adapters/aws/dynamodb-storage.ts";
export { DynamoDBStorage } from "../adapters/aws/dynamodb-storage.ts";
export type { RecurringScheduleTarget } from "../adapters/aws/eventbridge-schedules.ts";
export { recurringScheduleName, recurringScheduleRequest } from "../adapters/aws/eventbridge-schedules.ts";
export {
  COMMIT_LIMIT_BYTES,
  DEFAULT_OFFLOAD_THRESHOLD_BYTES,
  DYNAMODB_ITEM_LIMIT_BYTES,
  MAX_SQS_DELAY_SECONDS,
  S3_MAX_PAYLOAD_BYTES,
  SQS_MESSAGE_LIMIT_BYTES,
} from "../adapters/aws/limits.ts";
export type { PayloadRef, S3PayloadsOptions } from "../adapters/aws/s3-payloads.ts";
export { S3Payloads } from "../adapters/aws/s3-payloads.ts";
export type { EventBridgeRecurrence } from "../adapters/aws/schedule-expressions.ts";
export { eventBridgeRecurrence } from "../adapters/aws/schedule-expressions.ts";
export type { SqsSchedulerTimersOptions } from "../adapters/aws/scheduler-timers.ts";
export {
  atExpression,
  SqsSchedulerTimers,
  scheduleName,
  TIMER_RETRY_POLICY,
} from "../adapters/aws/scheduler-timers.ts";
export type { QueueMessage, SqsTaskQueueOptions } from "../adapters/aws/sqs-queue.ts";
export {
  activationDeduplicationId,
  BatchingSender,
  deduplicationId,
  parseQueueMessage,
  queueMessage,
  SqsTaskQueue,
} from "../adapters/aws/sqs-queue.ts";
export { createTable, createTableInput, TABLE_SCHEMA } from "../adapters/aws/table-schema.ts";
export type { RegistryOptions } from "../core/registry.ts";
export { defaultRegistry, Registry } from "../core/registry.ts";
export type { CloudWatchMetricsSink, CloudWatchUnit } from "../observability/cloudwatch-metrics.ts";
export { CLOUDWATCH_METRICS, cloudWatchMetrics } from "../observability/cloudwatch-metrics.ts";
export type { TelemetryFactory } from "../observability/engine-telemetry.ts";
export { openTelemetry } from "../observability/telemetry.ts";
export type { AwsClients, AwsRuntime, AwsRuntimeOptions } from "../runtimes/aws.ts";
export { createAwsClients, createAwsRuntime } from "../runtimes/aws.ts";
export type { ClientOptions, TsWorkflowClient } from "./client.ts";
export { createClient } from "./client.ts";
export type { AwsConfig, ClientConfig } from "./config.ts";
export { configToEnvironment, loadClientConfig, loadConfig } from "./config.ts";
export type {
  FunctionUrlEvent,
  FunctionUrlResult,
  HandlerOptions,
  ReaperHandler,
  SqsBatchHandler,
  StartEvent,
  StartHandler,
  StartResponse,
  SweeperHandler,
  WebhookHandler,
  WorkflowRegistry,
} from "./lambda/handlers.ts";
export {
  createHandlers,
  createReaperHandler,
  createStartHandler,
  createStepHandler,
  createSweeperHandler,
  createWebhookHandler,
  createWorkflowHandler,
  MAX_STEP_DEFERRALS,
  startEvent,
  unknownStepDelaySeconds,
  unknownWorkflowBackoffSeconds,
} from "./lambda/handlers.ts";
export type {
  DynamoDbStreamEvent,
  DynamoDbStreamRecord,
  LambdaContext,
  SqsBatchResponse,
  SqsEvent,
  SqsRecord,
} from "./lambda/lambda-types.ts";
export { expiredRunOf, reapExpiredRuns } from "./reaper.ts";
export type {
  AwsScheduleInfo,
  AwsSchedules,
  AwsSchedulesOptions,
  ScheduleReconcileReport,
  TickMessage,
} from "./schedules.ts";
export { awsSchedules, BUFFER_POLL_SECONDS } from "./schedules.ts";
export type { SweepOptions, SweepReport } from "./sweeper.ts";
export { sweep } from "./sweeper.ts";
