import { CfnOutput } from "aws-cdk-lib";
import type { DurableWorkflows } from "./durable-workflows.ts";

/** The stack outputs: the names, URLs and ARNs a user needs to call, watch or configure the kit by hand. */
export function createOutputs(kit: DurableWorkflows, scheduleGroupName: string): void {
  const outputs: [string, string, string][] = [
    ["TableName", kit.table.tableName, "DynamoDB table of runs (TSWORKFLOW_TABLE_NAME)"],
    [
      "PayloadBucketName",
      kit.payloadBucket.bucketName,
      "S3 bucket of large payloads (TSWORKFLOW_PAYLOAD_BUCKET)",
    ],
    ["WorkflowQueueUrl", kit.workflowQueue.queueUrl, "FIFO workflow queue (TSWORKFLOW_WORKFLOW_QUEUE_URL)"],
    ["StepQueueUrl", kit.stepQueue.queueUrl, "Standard step queue (TSWORKFLOW_STEP_QUEUE_URL)"],
    ["StepQueueArn", kit.stepQueue.queueArn, "ARN of the step queue (TSWORKFLOW_STEP_QUEUE_ARN)"],
    ["WorkflowDeadLetterQueueUrl", kit.workflowDeadLetterQueue.queueUrl, "DLQ of the workflow queue"],
    ["StepDeadLetterQueueUrl", kit.stepDeadLetterQueue.queueUrl, "DLQ of the step queue"],
    [
      "TimerDeadLetterQueueUrl",
      kit.timerDeadLetterQueue.queueUrl,
      "Timers EventBridge Scheduler could not deliver",
    ],
    [
      "ScheduleGroupName",
      scheduleGroupName,
      "EventBridge Scheduler group of long timers (TSWORKFLOW_SCHEDULE_GROUP)",
    ],
    [
      "SchedulerRoleArn",
      kit.schedulerRole.roleArn,
      "Role the Scheduler assumes (TSWORKFLOW_SCHEDULER_ROLE_ARN)",
    ],
    [
      "StartFunctionName",
      kit.aliases.start.functionName,
      "Invoke with { workflow, args, idempotencyKey } (the live alias)",
    ],
    ["StartFunctionArn", kit.aliases.start.functionArn, "ARN of the start function's live alias"],
  ];
  if (kit.webhookUrl)
    outputs.push(["WebhookUrl", kit.webhookUrl.url, "Webhook calls go to <url>hooks/<token>"]);
  for (const [name, value, description] of outputs) new CfnOutput(kit, name, { value, description });
}
