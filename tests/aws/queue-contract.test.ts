import { SchedulerClient } from "@aws-sdk/client-scheduler";
import {
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll } from "vitest";
import { SqsSchedulerTimers } from "../../lib/adapters/aws/scheduler-timers.ts";
import { parseQueueMessage, SqsTaskQueue } from "../../lib/adapters/aws/sqs-queue.ts";
import type { ActivationTask, StepTask } from "../../lib/ports/task-queue.ts";
import { VirtualClock } from "../../lib/testing/virtual-clock.ts";
import { describeTaskQueueContract } from "../contract/task-queue-contract.ts";
import { describeTimersContract } from "../contract/timers-contract.ts";
import { FakeScheduler } from "./harness/fake-scheduler.ts";
import { TEST_CREDENTIALS, TEST_REGION } from "./harness/free-port.ts";
import { type SqsEmulator, startSqs } from "./harness/sqs.ts";

const ROLE = "arn:aws:iam::000000000000:role/tsworkflow-scheduler";
const GROUP = "tsworkflow";

let sqs: SqsEmulator;
let client: SQSClient;
let scheduler: FakeScheduler;
let schedulerClient: SchedulerClient;
let prefixes = 0;

beforeAll(async () => {
  sqs = await startSqs();
  client = sqs.client();
  scheduler = new FakeScheduler({
    groups: [GROUP],
    now: Date.UTC(2030, 0, 1),
    deliver: async (arn, input) => {
      await client.send(new SendMessageCommand({ QueueUrl: sqs.urlOfArn(arn), MessageBody: input }));
    },
  });
  schedulerClient = new SchedulerClient({
    endpoint: await scheduler.start(),
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
});

afterAll(async () => {
  schedulerClient?.destroy();
  client?.destroy();
  await scheduler?.stop();
  await sqs?.stop();
});

/**
 * The kit's two queues, read as the Lambda event source mappings would: every message received is parsed
 * and deleted. A timer message (sent by a schedule, or delayed on the step queue) counts as fired: the
 * step function forwards it to the workflow queue as an activation.
 */
function sqsKit() {
  const queues = sqs.createKitQueues(`contract${++prefixes}`);
  const queue = new SqsTaskQueue({
    client,
    workflowQueueUrl: queues.workflowQueueUrl,
    stepQueueUrl: queues.stepQueueUrl,
  });
  const activations: ActivationTask[] = [];
  const steps: StepTask[] = [];
  const drain = async (url: string) => {
    for (;;) {
      const { Messages = [] } = await client.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
      );
      if (Messages.length === 0) return;
      for (const message of Messages) {
        const parsed = parseQueueMessage(message.Body ?? "");
        if (parsed.kind === "step") steps.push(parsed.task);
        else if (parsed.kind !== "tick") activations.push(parsed.task);
        await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle }));
      }
    }
  };
  const delivered = async () => {
    await drain(queues.workflowQueueUrl);
    await drain(queues.stepQueueUrl);
    return { activations: [...activations], steps: [...steps] };
  };
  return { queue, queues, delivered };
}

describeTaskQueueContract("SqsTaskQueue on fauxqs", {
  async create() {
    const { queue, delivered } = sqsKit();
    return { queue, delivered, close: async () => {} };
  },
});

describeTimersContract("SqsSchedulerTimers with EventBridge Scheduler (fake endpoint) and fauxqs", {
  // Longer than SQS's 15-minute delay: a one-time schedule, on the fake Scheduler's virtual clock.
  delayMs: 2 * 86_400_000,
  // Schedules have a resolution of one second (`at()` rounds up).
  marginMs: 1_000,
  async create() {
    const { queue, queues, delivered } = sqsKit();
    const clock = new VirtualClock(scheduler.now);
    const timers = new SqsSchedulerTimers({
      queue,
      scheduler: schedulerClient,
      stepQueueArn: queues.stepQueueArn,
      scheduleGroup: GROUP,
      schedulerRoleArn: ROLE,
      clock,
    });
    return {
      timers,
      now: () => clock.now(),
      async advanceTo(time) {
        clock.advanceTo(time);
        await scheduler.advanceTo(clock.now());
        return (await delivered()).activations;
      },
      close: async () => {},
    };
  },
});
