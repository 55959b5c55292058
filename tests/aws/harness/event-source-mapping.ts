import { randomUUID } from "node:crypto";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";

export type SqsLambdaHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;

export interface EventSourceMappingOptions {
  client: SQSClient;
  queueUrl: string;
  queueArn: string;
  handler: SqsLambdaHandler;
  /** @default 10 */
  batchSize?: number;
  /** Parallel pollers, each invoking the handler with its own batches (Lambda scales these out). @default 1 */
  concurrency?: number;
  /** The function's timeout: an invocation still running then counts as failed. @default 30000 */
  timeoutMs?: number;
  /**
   * The queue's visibility timeout. Lambda refuses a mapping whose queue hides a message for less time than the
   * function may run, so a message never comes back while its invocation is alive; the tests use shorter
   * timeouts (a killed function's message comes back sooner), so while an invocation runs past half of this,
   * its messages are hidden again (`ChangeMessageVisibilityBatch`, counted in `stats.visibilityExtensions`).
   * @default none (no extension)
   */
  visibilityTimeoutSeconds?: number;
  /** @default "tsworkflow-test" */
  functionName?: string;
  /**
   * The longest wait between two receives that find the queue empty (the wait starts at 15 ms and doubles).
   * A mapping beside another on one queue keeps it short, or the other, polling again at once while it finds
   * messages, takes them all. @default 100
   */
  maxIdleMs?: number;
  /** @default "us-east-1" */
  region?: string;
}

export interface EventSourceMappingStats {
  invocations: number;
  records: number;
  deleted: number;
  /** Records reported in `batchItemFailures`. */
  failedRecords: number;
  /** Invocations that threw or timed out (their whole batch comes back). */
  failedInvocations: number;
  receiveRequests: number;
  deleteRequests: number;
  /** Requests that hid the messages of a long invocation again (see `visibilityTimeoutSeconds`). */
  visibilityExtensions: number;
  /** The invocations' total run time (on the emulators: DynamoDB Local answers slower than DynamoDB). */
  durationMs: number;
}

/**
 * Behaves like Lambda's SQS event source mapping: polls the queue, invokes the handler with a
 * real-shaped `SQSEvent` and `Context`, deletes the records that succeeded, honours
 * `batchItemFailures` (an unknown or empty identifier fails the whole batch, as Lambda does), and
 * leaves failed records to reappear after the visibility timeout. The queue's redrive policy moves a
 * record to its DLQ after `maxReceiveCount` receives, as SQS does.
 */
export class EventSourceMapping {
  readonly stats: EventSourceMappingStats = {
    invocations: 0,
    records: 0,
    deleted: 0,
    failedRecords: 0,
    failedInvocations: 0,
    receiveRequests: 0,
    deleteRequests: 0,
    visibilityExtensions: 0,
    durationMs: 0,
  };
  private running = false;
  private loops: Promise<void>[] = [];
  private inFlight = 0;
  private readonly options: Required<Omit<EventSourceMappingOptions, "visibilityTimeoutSeconds">> &
    Pick<EventSourceMappingOptions, "visibilityTimeoutSeconds">;

  constructor(options: EventSourceMappingOptions) {
    this.options = {
      batchSize: 10,
      concurrency: 1,
      timeoutMs: 30_000,
      functionName: "tsworkflow-test",
      maxIdleMs: 100,
      region: "us-east-1",
      ...options,
    };
  }

  start(): this {
    if (this.running) return this;
    this.running = true;
    this.loops = Array.from({ length: this.options.concurrency }, () => this.loop());
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  /** True while an invocation is running. */
  get busy(): boolean {
    return this.inFlight > 0;
  }

  /** Receives one batch and invokes the handler with it; returns the number of records. */
  async pollOnce(): Promise<number> {
    const { client, queueUrl, batchSize } = this.options;
    this.stats.receiveRequests += 1;
    const received = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: batchSize,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return 0;
    this.inFlight += 1;
    try {
      await this.invoke(messages);
    } finally {
      this.inFlight -= 1;
    }
    return messages.length;
  }

  private async loop(): Promise<void> {
    let idleMs = 0;
    while (this.running) {
      let count = 0;
      try {
        count = await this.pollOnce();
      } catch {
        count = 0;
      }
      if (count > 0) {
        idleMs = 0;
        continue;
      }
      // Lambda long-polls; a short poll costs a request each time. While the queue stays empty, the next
      // receive waits longer (15 ms, doubling up to 100 ms): idle pollers left running by a test's other
      // deployments kept the test process's core busy. With several pollers, a message waits for the first.
      idleMs = Math.min(Math.max(2 * idleMs, 15), this.options.maxIdleMs);
      await new Promise((resolve) => setTimeout(resolve, idleMs));
    }
  }

  private async invoke(messages: Message[]): Promise<void> {
    const { handler, timeoutMs } = this.options;
    const event: SQSEvent = { Records: messages.map((message) => this.record(message)) };
    this.stats.invocations += 1;
    this.stats.records += messages.length;
    let response: SQSBatchResponse | undefined;
    let timer: NodeJS.Timeout | undefined;
    const began = performance.now();
    const keepHidden = this.keepHidden(messages);
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Task timed out after ${timeoutMs} ms`)), timeoutMs);
      });
      response = await Promise.race([handler(event, this.context(timeoutMs)), timeout]);
    } catch {
      this.stats.failedInvocations += 1;
      return;
    } finally {
      clearTimeout(timer);
      clearInterval(keepHidden);
      this.stats.durationMs += performance.now() - began;
    }
    const ids = new Set(event.Records.map((record) => record.messageId));
    const failures = response?.batchItemFailures ?? [];
    if (failures.some((failure) => !failure.itemIdentifier || !ids.has(failure.itemIdentifier))) {
      this.stats.failedInvocations += 1;
      return;
    }
    const failed = new Set(failures.map((failure) => failure.itemIdentifier));
    this.stats.failedRecords += failed.size;
    const done = event.Records.filter((record) => !failed.has(record.messageId));
    if (done.length === 0) return;
    this.stats.deleteRequests += 1;
    await this.options.client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: this.options.queueUrl,
        Entries: done.map((record, index) => ({ Id: String(index), ReceiptHandle: record.receiptHandle })),
      }),
    );
    this.stats.deleted += done.length;
  }

  /** Hides the messages of an invocation again every half visibility timeout while it runs (clear it after). */
  private keepHidden(messages: Message[]): NodeJS.Timeout | undefined {
    const { client, queueUrl, visibilityTimeoutSeconds } = this.options;
    if (visibilityTimeoutSeconds === undefined) return undefined;
    const entries = messages.map((message, index) => ({
      Id: String(index),
      ReceiptHandle: message.ReceiptHandle ?? "",
      VisibilityTimeout: visibilityTimeoutSeconds,
    }));
    return setInterval(() => {
      this.stats.visibilityExtensions += 1;
      client
        .send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: queueUrl, Entries: entries }))
        .catch(() => {});
    }, visibilityTimeoutSeconds * 500);
  }

  private record(message: Message): SQSRecord {
    const attributes = message.Attributes ?? {};
    return {
      messageId: message.MessageId ?? randomUUID(),
      receiptHandle: message.ReceiptHandle ?? "",
      body: message.Body ?? "",
      attributes: {
        ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? "1",
        SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
        SenderId: attributes.SenderId ?? "000000000000",
        ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        ...(attributes.MessageGroupId ? { MessageGroupId: attributes.MessageGroupId } : {}),
        ...(attributes.MessageDeduplicationId
          ? { MessageDeduplicationId: attributes.MessageDeduplicationId }
          : {}),
        ...(attributes.SequenceNumber ? { SequenceNumber: attributes.SequenceNumber } : {}),
      },
      messageAttributes: {},
      md5OfBody: message.MD5OfBody ?? "",
      eventSource: "aws:sqs",
      eventSourceARN: this.options.queueArn,
      awsRegion: this.options.region,
    };
  }

  private context(timeoutMs: number): Context {
    const { functionName, region } = this.options;
    const deadline = Date.now() + timeoutMs;
    const requestId = randomUUID();
    return {
      callbackWaitsForEmptyEventLoop: true,
      functionName,
      functionVersion: "$LATEST",
      invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
      memoryLimitInMB: "512",
      awsRequestId: requestId,
      logGroupName: `/aws/lambda/${functionName}`,
      logStreamName: `2026/01/01/[$LATEST]${requestId.replace(/-/g, "")}`,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      done: () => {},
      fail: () => {},
      succeed: () => {},
    };
  }
}
