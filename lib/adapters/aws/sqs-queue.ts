import { randomUUID } from "node:crypto";
import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { ConfigurationError, InvalidMessageError, PayloadTooLargeError } from "../../core/errors.ts";
import { sha256 } from "../../core/hash.ts";
import * as z from "../../core/schema.ts";
import type { ActivationTask, QueueLimits, StepTask, TaskQueue } from "../../ports/task-queue.ts";
import { byteLength, SQS_MESSAGE_LIMIT_BYTES } from "./limits.ts";
import type { PayloadRef, S3Payloads } from "./s3-payloads.ts";

const nonEmpty = z.string().check(z.minLength(1));

/**
 * Messages on the kit's queues: JSON bodies of `queueMessage`. Tasks are checked for what the handlers
 * rely on and otherwise passed through untouched (loose objects), so that a newer engine's fields and
 * activation causes survive the queue.
 */
const activationTask = z.looseObject({
  runId: nonEmpty,
  cause: z.looseObject({ kind: nonEmpty }),
});

const stepTask = z.looseObject({
  runId: nonEmpty,
  workflowName: nonEmpty,
  stepId: nonEmpty,
  stepName: nonEmpty,
  attempt: z.int().check(z.positive()),
  input: z.array(z.unknown()),
});

export const queueMessage = z.discriminatedUnion("kind", [
  /** On the FIFO workflow queue: activate a run. */
  z.object({ kind: z.literal("activation"), task: activationTask }),
  /** On the standard step queue: run one attempt of a step (its input in S3 when too large for SQS). */
  z.object({
    kind: z.literal("step"),
    task: stepTask,
    inputRef: z.optional(z.object({ bucket: z.string(), key: z.string(), bytes: z.number() })),
    /** How many times the step handler put this task back because the code did not know its step. */
    deferrals: z.optional(z.int().check(z.nonnegative())),
  }),
  /** On the standard step queue (delayed, or sent by a schedule): forward `task` to the workflow queue at `fireAt`. */
  z.object({
    kind: z.literal("timer"),
    task: activationTask,
    timerId: nonEmpty,
    fireAt: z.number(),
  }),
  /** On the standard step queue, sent by a recurring schedule: start the run of one tick (see `awsSchedules`). */
  z.looseObject({ kind: z.literal("tick"), schedule: z.string(), scheduledTime: z.string() }),
]);

/** A message as the handlers use it: the tasks typed as the ports define them. */
export type QueueMessage =
  | { kind: "activation"; task: ActivationTask }
  | { kind: "step"; task: StepTask; inputRef?: PayloadRef; deferrals?: number }
  | { kind: "timer"; task: ActivationTask; timerId: string; fireAt: number }
  | {
      kind: "tick";
      schedule: string;
      /** The tick, as EventBridge Scheduler writes `<aws.scheduler.scheduled-time>`. */
      scheduledTime: string;
      /** Sent again by the step function while `overlap: "buffer-one"` holds the tick back. */
      buffered?: boolean;
    };

/**
 * The body of a message: its JSON, with every character that SQS may refuse written as a `\uXXXX`
 * escape (the same JSON value). SQS accepts #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and
 * #x10000-#x10FFFF; JSON.stringify leaves U+FFFE and U+FFFF as they are, and emulators (fauxqs,
 * LocalStack) refuse the characters beyond U+FFFF too. JSON syntax is ASCII, so these only occur
 * inside strings, where an escape means the same character.
 */
export function messageBody(message: QueueMessage): string {
  return JSON.stringify(message).replace(SQS_UNSAFE, (text) =>
    Array.from(
      { length: text.length },
      (_, index) => `\\u${text.charCodeAt(index).toString(16).padStart(4, "0")}`,
    ).join(""),
  );
}

/** The bytes a step message adds around its task's JSON: `{"kind":"step","task":…}`. */
const STEP_ENVELOPE_BYTES = byteLength(JSON.stringify({ kind: "step", task: 0 })) - 1;

const SQS_UNSAFE = /[\uFFFE\uFFFF]|[\uD800-\uDBFF][\uDC00-\uDFFF]/g;

/**
 * Parses a message body from one of the kit's queues.
 * @throws InvalidMessageError naming the field at fault
 */
export function parseQueueMessage(body: string): QueueMessage {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new InvalidMessageError(
      `A queue message is not JSON: ${String(error)}. It was not sent by tsworkflow.`,
    );
  }
  const parsed = z.safeParseWithMessages(queueMessage, value);
  if (parsed.success) return parsed.data as QueueMessage;
  const issue = parsed.error.issues[0];
  throw new InvalidMessageError(
    `A queue message is not a tsworkflow message: ${issue?.path.join(".") || "(message)"}: ${issue?.message ?? "invalid"}.`,
  );
}

const DEDUPLICATION_ID = /^[\x21-\x7e]{1,128}$/;

/** A FIFO deduplication id: the readable id when SQS accepts it, else its SHA-256. */
export function deduplicationId(readable: string): string {
  return DEDUPLICATION_ID.test(readable) ? readable : sha256(readable);
}

/**
 * The deduplication id of an activation, derived from its cause so that a repeated send within SQS's
 * five-minute window is dropped: `start` and step outcomes are facts that happen once; `recover` and
 * `wake` are requests that must not be swallowed.
 */
export function activationDeduplicationId(task: ActivationTask): string {
  const { runId, cause } = task;
  switch (cause.kind) {
    case "start":
      return deduplicationId(`${runId}:start`);
    case "outcome":
      return deduplicationId(`${runId}:${cause.stepId}:${cause.attempt}`);
    case "timer":
      return deduplicationId(`${runId}:timer:${cause.timerId}`);
    default:
      return randomUUID();
  }
}

/** Options of {@link SqsTaskQueue}. */
export interface SqsTaskQueueOptions {
  client: SQSClient;
  /** The FIFO queue of activations (`MessageGroupId = runId`). */
  workflowQueueUrl: string;
  /** The standard queue of step tasks. */
  stepQueueUrl: string;
  /**
   * The largest message body sent.
   * @default 262144 (256 KiB)
   */
  maxMessageBytes?: number;
  /**
   * Where a step input too large for SQS goes (the message then carries its reference).
   * @default none
   */
  payloads?: S3Payloads;
  /**
   * Decides which steps an activation runs inline (see `EngineOptions.inlineSteps`).
   * @default none: every step goes through the step queue
   */
  inline?: { reserve(task: StepTask): (() => void) | undefined };
}

interface Pending {
  entry: Omit<SendMessageBatchRequestEntry, "Id">;
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * SQS's answer for a message (an SDK error, or a failed entry of a batch) as a tsworkflow error: a queue
 * that does not exist is a `ConfigurationError`, a message SQS finds too long a `PayloadTooLargeError`;
 * anything else stays the SDK's error (or says what SQS said of a batch entry), to be sent again on a
 * redelivery.
 */
export function mapSqsError(
  code: string | undefined,
  message: string | undefined,
  queueUrl: string,
  bytes: number,
  cause?: unknown,
): Error {
  // QueueDoesNotExist (JSON protocol) or AWS.SimpleQueueService.NonExistentQueue (query protocol).
  if (/QueueDoesNotExist|NonExistentQueue/.test(`${code}`))
    return new ConfigurationError(`No SQS queue ${queueUrl}: deploy the stack, or check the queue URLs.`);
  if (/TooLong|shorter than/i.test(`${code} ${message}`))
    return new PayloadTooLargeError(`A message to ${queueUrl}`, bytes, SQS_MESSAGE_LIMIT_BYTES);
  if (cause instanceof Error) return cause;
  return new Error(`SQS refused a message on ${queueUrl}: ${code}: ${message ?? ""}`);
}

/**
 * Sends messages to one queue, coalescing those sent in the same tick into `SendMessageBatch`
 * requests (up to 10 messages and 256 KiB each): the steps of a `Promise.all` cost one request.
 */
export class BatchingSender {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly client: SQSClient,
    readonly queueUrl: string,
    private readonly maxBatchBytes = SQS_MESSAGE_LIMIT_BYTES,
  ) {}

  send(entry: Omit<SendMessageBatchRequestEntry, "Id">): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ entry, bytes: byteLength(entry.MessageBody ?? ""), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    this.scheduled = false;
    const batches: Pending[][] = [];
    let batch: Pending[] = [];
    let bytes = 0;
    for (const item of pending) {
      if (batch.length === 10 || (batch.length > 0 && bytes + item.bytes > this.maxBatchBytes)) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(item);
      bytes += item.bytes;
    }
    if (batch.length > 0) batches.push(batch);
    await Promise.all(batches.map((items) => this.sendBatch(items)));
  }

  private async sendBatch(items: Pending[]): Promise<void> {
    try {
      if (items.length === 1) {
        const [only] = items as [Pending];
        await this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, ...only.entry }));
        only.resolve();
        return;
      }
      const result = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: items.map((item, index) => ({ Id: String(index), ...item.entry })),
        }),
      );
      const failed = new Map((result.Failed ?? []).map((failure) => [failure.Id, failure]));
      items.forEach((item, index) => {
        const failure = failed.get(String(index));
        if (!failure) item.resolve();
        else item.reject(mapSqsError(failure.Code, failure.Message, this.queueUrl, item.bytes));
      });
    } catch (error) {
      const { name, message } = error as Error;
      for (const item of items) item.reject(mapSqsError(name, message, this.queueUrl, item.bytes, error));
    }
  }
}

/**
 * The SQS task queue: activations go to the FIFO workflow queue, grouped by run (one activation of a
 * run at a time) and deduplicated on their cause; step tasks go to the standard step queue, where
 * they run in parallel.
 * @example
 * import { SqsTaskQueue } from "tsworkflow/aws";
 * const queue = new SqsTaskQueue({ client: new SQSClient({}), workflowQueueUrl, stepQueueUrl });
 */
export class SqsTaskQueue implements TaskQueue {
  /** Step tasks over the message limit fail their attempt (in the engine), unless their input can go to S3. */
  readonly limits: QueueLimits;
  readonly workflowQueue: BatchingSender;
  readonly stepQueue: BatchingSender;
  private readonly maxMessageBytes: number;
  private readonly payloads: S3Payloads | undefined;
  private readonly inline: SqsTaskQueueOptions["inline"];

  constructor(options: SqsTaskQueueOptions) {
    this.payloads = options.payloads;
    this.inline = options.inline;
    this.maxMessageBytes = options.maxMessageBytes ?? SQS_MESSAGE_LIMIT_BYTES;
    this.limits = {
      maxTaskBytes: this.payloads?.offloads ? Infinity : this.maxMessageBytes - STEP_ENVELOPE_BYTES,
    };
    this.workflowQueue = new BatchingSender(options.client, options.workflowQueueUrl, this.maxMessageBytes);
    this.stepQueue = new BatchingSender(options.client, options.stepQueueUrl, this.maxMessageBytes);
  }

  async enqueueActivation(task: ActivationTask): Promise<void> {
    await this.sendActivation(task, activationDeduplicationId(task));
  }

  /** A step the activation may run itself, when `inline` allows it (see `SqsTaskQueueOptions.inline`). */
  reserveStepSlot(task: StepTask): (() => void) | undefined {
    return this.inline?.reserve(task);
  }

  /**
   * Sends an activation with an explicit deduplication id (the step handler forwards timers with the
   * id of the message that carried them, so that a re-armed timer is never dropped as a duplicate).
   */
  async sendActivation(task: ActivationTask, dedupId: string): Promise<void> {
    const body = messageBody({ kind: "activation", task });
    await this.workflowQueue.send({
      MessageBody: body,
      MessageGroupId: task.runId,
      MessageDeduplicationId: dedupId,
    });
  }

  /** @param delaySeconds 0 to 900: a step that waits its turn under a flow-control limit comes back then */
  async enqueueStep(task: StepTask, delaySeconds = 0): Promise<void> {
    const body = messageBody({ kind: "step", task });
    const bytes = byteLength(body);
    const delay = delaySeconds > 0 ? { DelaySeconds: delaySeconds } : {};
    if (bytes <= this.maxMessageBytes) return this.stepQueue.send({ MessageBody: body, ...delay });
    if (this.payloads?.offloads) {
      // The same object as the step_started event's input (content-addressed): usually already stored.
      const inputRef = await this.payloads.put(task.runId, JSON.stringify(task.input));
      const message: QueueMessage = { kind: "step", task: { ...task, input: [] }, inputRef };
      return this.stepQueue.send({ MessageBody: messageBody(message), ...delay });
    }
    // Only with characters SQS needs escaped (they make the body longer than the task's JSON, which the
    // engine checked against `limits`): the engine fails the attempt the same way.
    throw new PayloadTooLargeError(`The message of step ${task.stepId}`, bytes, this.maxMessageBytes);
  }

  /** Sends a timer message to the step queue, delivered after `delaySeconds` (0 to 900). */
  async sendTimer(message: Extract<QueueMessage, { kind: "timer" }>, delaySeconds: number): Promise<void> {
    await this.stepQueue.send({ MessageBody: messageBody(message), DelaySeconds: delaySeconds });
  }

  /**
   * Puts a step message back on the step queue after `delaySeconds` (0 to 900), counting the deferral:
   * the step handler's backoff for a step its code does not know yet (a deploy half done).
   */
  async deferStep(message: Extract<QueueMessage, { kind: "step" }>, delaySeconds: number): Promise<void> {
    const next: QueueMessage = { ...message, deferrals: (message.deferrals ?? 0) + 1 };
    await this.stepQueue.send({ MessageBody: messageBody(next), DelaySeconds: delaySeconds });
  }

  /** The step task of a message, with an input that was too large for SQS read back from S3. */
  async stepTaskOf(message: Extract<QueueMessage, { kind: "step" }>): Promise<StepTask> {
    if (!message.inputRef) return message.task;
    if (!this.payloads)
      throw new Error("A step message refers to an S3 input, and this queue has no S3 client.");
    const input = JSON.parse(await this.payloads.get(message.task.runId, message.inputRef)) as unknown[];
    return { ...message.task, input };
  }
}
