/**
 * The AWS runtime without DynamoDB: the real Lambda handlers and SQS adapter over fauxqs, with the
 * event source mapping of tests/aws/harness feeding them, and a MemoryStorage as the store (enough for
 * what the queues and handlers do with messages; DynamoDB is tested in tests/aws).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SchedulerClient } from "@aws-sdk/client-scheduler";
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { AnyWorkflow } from "tsworkflow";
import { createAwsRuntime } from "tsworkflow/aws";
import { MemoryStorage } from "tsworkflow/local";
import { createHandlers } from "../../../lib/aws/lambda/handlers.ts";
import { lambdaContext } from "../../aws/harness/aws-stack.ts";
import { EventSourceMapping } from "../../aws/harness/event-source-mapping.ts";
import { TEST_REGION } from "../../aws/harness/free-port.ts";
import { type KitQueues, type SqsEmulator, startSqs } from "../../aws/harness/sqs.ts";

export interface SqsKit {
  sqs: SqsEmulator;
  queues: KitQueues;
  store: MemoryStorage;
  /** Starts a run through the start function, as `lambda:InvokeFunction` would. */
  start(workflow: string, args: unknown[]): Promise<{ runId: string }>;
  sendToWorkflowQueue(body: string, groupId: string): Promise<void>;
  sendToStepQueue(body: string): Promise<void>;
  stop(): Promise<void>;
}

let kits = 0;

export async function startSqsKit(
  workflows: AnyWorkflow[],
  options: {
    visibilityTimeoutSeconds?: number;
    maxReceiveCount?: number;
    deployBackoffSeconds?: number;
    inlineSteps?: boolean;
  } = {},
): Promise<SqsKit> {
  kits += 1;
  const sqs = await startSqs();
  const name = `rel${kits}`;
  const visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 1;
  const queues = sqs.createKitQueues(name, {
    visibilityTimeoutSeconds,
    maxReceiveCount: options.maxReceiveCount ?? 2,
  });
  const client: SQSClient = sqs.client();
  const store = new MemoryStorage();
  const runtime = createAwsRuntime(
    {
      tableName: "unused",
      workflowQueueUrl: queues.workflowQueueUrl,
      stepQueueUrl: queues.stepQueueUrl,
      stepQueueArn: queues.stepQueueArn,
      scheduleGroup: "tsworkflow",
      schedulerRoleArn: "arn:aws:iam::000000000000:role/unused",
      region: TEST_REGION,
      endpoints: {},
      ttlDays: 30,
    },
    {
      store,
      clients: {
        sqs: client,
        dynamodb: new DynamoDBClient({ region: TEST_REGION }),
        scheduler: new SchedulerClient({ region: TEST_REGION }),
      },
    },
  );
  runtime.engine.inlineSteps = options.inlineSteps ?? false;
  const handlers = createHandlers(
    { workflows },
    { runtime, deployBackoffSeconds: options.deployBackoffSeconds ?? 1 },
  );
  const poll = (queueUrl: string, queueArn: string, handler: typeof handlers.stepHandler) =>
    new EventSourceMapping({
      client: sqs.client(),
      queueUrl,
      queueArn,
      handler,
      timeoutMs: 10_000,
      visibilityTimeoutSeconds,
    }).start();
  const mappings = [
    poll(queues.workflowQueueUrl, queues.workflowQueueArn, handlers.workflowHandler),
    poll(queues.stepQueueUrl, queues.stepQueueArn, handlers.stepHandler),
  ];
  return {
    sqs,
    queues,
    store,
    start: (workflow, args) => handlers.startHandler({ workflow, args }, lambdaContext("tsworkflow-start")),
    async sendToWorkflowQueue(body, groupId) {
      await client.send(
        new SendMessageCommand({
          QueueUrl: queues.workflowQueueUrl,
          MessageBody: body,
          MessageGroupId: groupId,
          MessageDeduplicationId: crypto.randomUUID(),
        }),
      );
    },
    async sendToStepQueue(body) {
      await client.send(new SendMessageCommand({ QueueUrl: queues.stepQueueUrl, MessageBody: body }));
    },
    async stop() {
      await Promise.all(mappings.map((mapping) => mapping.stop()));
      client.destroy();
      await sqs.stop();
    },
  };
}
