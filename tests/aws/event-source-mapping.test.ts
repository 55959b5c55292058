import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { instancesOf } from "./harness/aws-stack.ts";
import { EventSourceMapping } from "./harness/event-source-mapping.ts";
import { type SqsEmulator, startSqs } from "./harness/sqs.ts";
import { waitFor } from "./harness/wait.ts";

let sqs: SqsEmulator;
let client: SQSClient;
let n = 0;

beforeAll(async () => {
  sqs = await startSqs();
  client = sqs.client();
});

afterAll(async () => {
  client?.destroy();
  await sqs?.stop();
});

function freshQueues(maxReceiveCount = 5) {
  n += 1;
  return sqs.createKitQueues(`esm${n}`, { visibilityTimeoutSeconds: 1, maxReceiveCount });
}

async function send(url: string, bodies: string[], group?: string): Promise<void> {
  for (const [i, body] of bodies.entries()) {
    await client.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: body,
        ...(group ? { MessageGroupId: group, MessageDeduplicationId: `${group}-${i}-${body}` } : {}),
      }),
    );
  }
}

describe("EventSourceMapping (the Lambda SQS poller used by the AWS tests)", () => {
  it("deletes the records that succeeded and brings back those reported in batchItemFailures", async () => {
    // Prepare
    const queues = freshQueues();
    await send(queues.stepQueueUrl, ["a", "b", "c"]);
    const seen: { body: string; receiveCount: string }[] = [];
    const mapping = new EventSourceMapping({
      client,
      queueUrl: queues.stepQueueUrl,
      queueArn: queues.stepQueueArn,
      handler: async (event: SQSEvent) => {
        for (const r of event.Records)
          seen.push({ body: r.body, receiveCount: r.attributes.ApproximateReceiveCount });
        const failed = event.Records.filter(
          (r) => r.body === "b" && r.attributes.ApproximateReceiveCount === "1",
        );
        return { batchItemFailures: failed.map((r) => ({ itemIdentifier: r.messageId })) };
      },
    });
    // Act
    await mapping.pollOnce();
    const again = await waitFor("the failed record to come back", async () =>
      (await mapping.pollOnce()) > 0 ? true : undefined,
    );
    // Assess
    expect(again).toBe(true);
    expect(seen.map((s) => s.body).sort()).toEqual(["a", "b", "b", "c"]);
    expect(seen.filter((s) => s.body === "b").map((s) => s.receiveCount)).toEqual(["1", "2"]);
    expect(mapping.stats).toMatchObject({ deleted: 3, failedRecords: 1 });
  });

  it("gives each invocation a real-shaped SQS event and Lambda context", async () => {
    const queues = freshQueues();
    await send(queues.workflowQueueUrl, ["x"], "run_1");
    let captured: { event: SQSEvent; requestId: string; remaining: number } | undefined;
    const mapping = new EventSourceMapping({
      client,
      queueUrl: queues.workflowQueueUrl,
      queueArn: queues.workflowQueueArn,
      functionName: "workflow",
      handler: async (event, context) => {
        captured = { event, requestId: context.awsRequestId, remaining: context.getRemainingTimeInMillis() };
        return { batchItemFailures: [] };
      },
    });
    await mapping.pollOnce();
    const record = captured?.event.Records[0];
    expect(record).toMatchObject({
      body: "x",
      eventSource: "aws:sqs",
      eventSourceARN: queues.workflowQueueArn,
      awsRegion: "us-east-1",
      attributes: { MessageGroupId: "run_1", ApproximateReceiveCount: "1" },
    });
    expect(record?.attributes.SequenceNumber).toBeTruthy();
    expect(captured?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(captured?.remaining).toBeGreaterThan(0);
  });

  it("returns the whole batch when the invocation throws or times out", async () => {
    const queues = freshQueues();
    await send(queues.stepQueueUrl, ["p", "q"]);
    let calls = 0;
    const mapping = new EventSourceMapping({
      client,
      queueUrl: queues.stepQueueUrl,
      queueArn: queues.stepQueueArn,
      timeoutMs: 200,
      handler: async () => {
        calls += 1;
        if (calls === 1) throw new Error("crash");
        if (calls === 2) await new Promise(() => {});
        return { batchItemFailures: [] };
      },
    });
    await mapping.pollOnce();
    await waitFor("a second delivery", async () => ((await mapping.pollOnce()) > 0 ? true : undefined));
    await waitFor("a third delivery", async () => ((await mapping.pollOnce()) > 0 ? true : undefined));
    expect(mapping.stats).toMatchObject({ failedInvocations: 2, deleted: 2 });
  });

  it("never hands a record to a second invocation while the first still runs, however long it takes", async () => {
    // Prepare: a 1 s visibility timeout and an invocation of 2.5 s (Lambda refuses a queue that hides a
    // message for less than the function's timeout; the tests' short timeouts must not let it come back).
    const queues = freshQueues();
    await send(queues.stepQueueUrl, ["slow"]);
    const received: string[] = [];
    const mapping = new EventSourceMapping({
      client,
      queueUrl: queues.stepQueueUrl,
      queueArn: queues.stepQueueArn,
      visibilityTimeoutSeconds: 1,
      concurrency: 2,
      handler: async (event) => {
        for (const record of event.Records) received.push(record.body);
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        return { batchItemFailures: [] };
      },
    }).start();
    // Act
    await waitFor("the record to be deleted", async () => (mapping.stats.deleted === 1 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await mapping.stop();
    // Assess
    expect(received).toEqual(["slow"]);
    expect(mapping.stats.visibilityExtensions).toBeGreaterThanOrEqual(4);
  });

  it("lets SQS move a record that keeps failing to the dead-letter queue after maxReceiveCount receives", async () => {
    const queues = freshQueues(2);
    await send(queues.stepQueueUrl, ["poison"]);
    const mapping = new EventSourceMapping({
      client,
      queueUrl: queues.stepQueueUrl,
      queueArn: queues.stepQueueArn,
      handler: async (event) => ({
        batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })),
      }),
    }).start();
    const dead = await waitFor("the record in the DLQ", () => {
      const inspected = sqs.server.inspectQueue(`esm${n}-step-dlq`);
      return inspected && inspected.messages.ready.length > 0 ? inspected.messages.ready : undefined;
    });
    await mapping.stop();
    expect(dead.map((m) => m.body)).toEqual(["poison"]);
    expect(mapping.stats.records).toBe(2);
  });
});

describe("instancesOf (Lambda's function instances in the AWS tests)", () => {
  /** A function whose instances say which one ran, after `ms`. */
  function numberedInstances(churn: number, ms = 0) {
    let made = 0;
    return instancesOf(() => {
      made += 1;
      const instance = made;
      return async () => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return { batchItemFailures: [{ itemIdentifier: String(instance) }] };
      };
    }, churn);
  }
  const invoke = async (handler: ReturnType<typeof numberedInstances>) =>
    (await handler({ Records: [] }, {} as never)).batchItemFailures[0]?.itemIdentifier;
  /** The instances that ran `count` invocations made one after another. */
  async function inTurn(handler: ReturnType<typeof numberedInstances>, count: number) {
    const ran = [];
    for (let i = 0; i < count; i += 1) ran.push(await invoke(handler));
    return ran;
  }

  it("sends invocations one after another to the same warm instance without churn", async () => {
    const handler = numberedInstances(0);
    expect(await inTurn(handler, 5)).toEqual(["1", "1", "1", "1", "1"]);
    expect(handler.count()).toBe(1);
  });

  it("adds an instance for an invocation that finds none idle (scaling)", async () => {
    const handler = numberedInstances(0, 20);
    const ran = await Promise.all([invoke(handler), invoke(handler), invoke(handler)]);
    expect(ran.sort()).toEqual(["1", "2", "3"]);
    expect(handler.count()).toBe(3);
  });

  it("with churn, replaces an idle instance by a fresh one (recycling): the instances do not pile up", async () => {
    const handler = numberedInstances(1);
    expect(await inTurn(handler, 5)).toEqual(["1", "2", "3", "4", "5"]);
    expect(handler.count()).toBe(1);
  });
});
