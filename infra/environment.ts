import { DOCUMENT_LAG_MS } from "../lib/adapters/aws/document-lag.ts";
import type { DurableWorkflows } from "./durable-workflows.ts";
import type { EndpointOverrides, Settings } from "./props.ts";

/**
 * The environment of every function of the kit: what `loadConfig()` in `tsworkflow/aws` reads (table,
 * queues, schedule group and role, timer DLQ, payload bucket, retention, sweep threshold, endpoint
 * overrides), after the user's own `environment`, which it cannot override.
 */
export function functionEnvironment(
  kit: DurableWorkflows,
  settings: Settings,
  endpoints: EndpointOverrides | undefined,
): Record<string, string> {
  return {
    ...settings.environment,
    TSWORKFLOW_TABLE_NAME: kit.table.tableName,
    TSWORKFLOW_WORKFLOW_QUEUE_URL: kit.workflowQueue.queueUrl,
    TSWORKFLOW_STEP_QUEUE_URL: kit.stepQueue.queueUrl,
    TSWORKFLOW_STEP_QUEUE_ARN: kit.stepQueue.queueArn,
    TSWORKFLOW_SCHEDULE_GROUP: settings.scheduleGroupName,
    TSWORKFLOW_SCHEDULER_ROLE_ARN: kit.schedulerRole.roleArn,
    TSWORKFLOW_TIMER_DLQ_ARN: kit.timerDeadLetterQueue.queueArn,
    TSWORKFLOW_PAYLOAD_BUCKET: kit.payloadBucket.bucketName,
    TSWORKFLOW_TTL_DAYS: String(settings.ttlDays),
    // A pending or running run silent for two step visibility timeouts has lost a message; a running
    // run's document may be up to DOCUMENT_LAG_MS older than its last commit.
    TSWORKFLOW_SWEEP_STALE_SECONDS: String(
      settings.stepVisibilityTimeout.toSeconds() * 2 + DOCUMENT_LAG_MS / 1000,
    ),
    ...(endpoints?.dynamodb ? { TSWORKFLOW_DYNAMODB_ENDPOINT: endpoints.dynamodb } : {}),
    ...(endpoints?.sqs ? { TSWORKFLOW_SQS_ENDPOINT: endpoints.sqs } : {}),
    ...(endpoints?.scheduler ? { TSWORKFLOW_SCHEDULER_ENDPOINT: endpoints.scheduler } : {}),
    ...(endpoints?.s3 ? { TSWORKFLOW_S3_ENDPOINT: endpoints.s3 } : {}),
    // Stack traces in CloudWatch point at the TypeScript sources.
    NODE_OPTIONS: "--enable-source-maps",
  };
}

/**
 * The environment of a function outside the kit that starts or reads runs with `createClient()`, or
 * invokes the start function (`TSWORKFLOW_START_FUNCTION`).
 */
export function clientEnvironment(kit: DurableWorkflows): Record<string, string> {
  return {
    TSWORKFLOW_TABLE_NAME: kit.table.tableName,
    TSWORKFLOW_WORKFLOW_QUEUE_URL: kit.workflowQueue.queueUrl,
    TSWORKFLOW_PAYLOAD_BUCKET: kit.payloadBucket.bucketName,
    TSWORKFLOW_START_FUNCTION: kit.aliases.start.functionArn,
    TSWORKFLOW_SCHEDULE_GROUP: kit.scheduleGroup.scheduleGroupName,
  };
}
