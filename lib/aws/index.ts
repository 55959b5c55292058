/**
 * tsworkflow on AWS: the DynamoDB event store, the SQS task queue, EventBridge Scheduler timers, the
 * Lambda handler factories and a client for other Lambdas. Loads the AWS SDK; the core entry does not.
 */

export type {
  FunctionUrlEvent,
  FunctionUrlResult,
  HandlerOptions,
  SqsBatchHandler,
  StartEvent,
  StartHandler,
  StartResponse,
  WebhookHandler,
  WorkflowRegistry,
} from "../../functions/handlers.ts";
export {
  createHandlers,
  createStartHandler,
  createStepHandler,
  createWebhookHandler,
  createWorkflowHandler,
  startEvent,
} from "../../functions/handlers.ts";
export type { ClientOptions, TsWorkflowClient } from "./client.ts";
export { createClient } from "./client.ts";
export type { AwsConfig, ClientConfig } from "./config.ts";
export { configToEnvironment, loadClientConfig, loadConfig } from "./config.ts";
export type { DynamoDBStorageOptions } from "./dynamodb-storage.ts";
export { DynamoDBStorage } from "./dynamodb-storage.ts";
export {
  COMMIT_LIMIT_BYTES,
  DYNAMODB_ITEM_LIMIT_BYTES,
  OUTCOME_LIMIT_BYTES,
  SQS_MESSAGE_LIMIT_BYTES,
} from "./limits.ts";
export type { AwsClients, AwsRuntime, AwsRuntimeOptions } from "./runtime.ts";
export { createAwsClients, createAwsRuntime } from "./runtime.ts";
export type { QueueMessage, SqsTaskQueueOptions } from "./sqs-queue.ts";
export {
  activationDeduplicationId,
  BatchingSender,
  deduplicationId,
  parseQueueMessage,
  queueMessage,
  SqsTaskQueue,
} from "./sqs-queue.ts";
export { createTable, createTableInput, TABLE_SCHEMA } from "./table-schema.ts";
export type { SqsSchedulerTimersOptions } from "./timers.ts";
export { atExpression, MAX_SQS_DELAY_SECONDS, SqsSchedulerTimers, scheduleName } from "./timers.ts";
