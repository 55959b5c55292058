/**
 * The engine's payload rules, in one place: what is too large, and what follows. Stores and queues
 * declare what they can hold (`EventStore.limits`, `TaskQueue.limits`); the engine applies these rules
 * before it calls them, the same way on every backend (memory, file, Redis, AWS). Adapters only store,
 * send, and map their service's errors to tsworkflow errors.
 *
 * | value | limit | over it |
 * |---|---|---|
 * | workflow input (`start`), event payload (`sendEvent`) | the store's `maxPayloadBytes` | refused at the call with `PayloadTooLargeError`; nothing is stored |
 * | step input, workflow result, log data, `continueAsNew` input | the store's `maxPayloadBytes` | `PayloadTooLargeError` in the workflow, where the value was given |
 * | step result | the store's `maxPayloadBytes` | the attempt fails with `PayloadTooLargeError` (never retried), recorded at the engine's clock |
 * | step error | the store's `maxPayloadBytes` | kept, cut to fit ({@link storableError}): its name and code, so its retry policy, stay |
 * | step task | the queue's `maxTaskBytes` | the attempt fails with `PayloadTooLargeError` before anything is sent (never retried), recorded at the engine's clock |
 * | the events of one commit | what the store takes at once, which only it can measure (DynamoDB without a payload bucket: about 4 MB compressed); it refuses more with `PayloadTooLargeError` | the activation applies half as many of the outcomes and events that arrived (`CommitBudget` in decide.ts), commits, and goes on with the rest, in as many commits as it takes; when the events of one outcome, or the workflow's own new events (many large step inputs at once), do not fit, the run fails with the store's error in place of those events (never retried) |
 *
 * Every value is measured the same way: its JSON in UTF-8 bytes. A commit is the exception: the store
 * measures it as it stores it (compressed, on DynamoDB), and the engine halves what it asks of it.
 */
import { PayloadTooLargeError, type SerializedError, type TsWorkflowError } from "../core/errors.ts";
import { MAX_PAYLOAD_BYTES } from "../core/serialization.ts";
import type { StepOutcome, StoreLimits } from "../ports/event-store.ts";
import type { QueueLimits, StepTask } from "../ports/task-queue.ts";

/** The largest payload a store holds: what it declares, `MAX_PAYLOAD_BYTES` when it declares nothing. */
export function payloadLimit(limits: StoreLimits | undefined): number {
  return limits?.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
}

/** The error of a step task the queue cannot carry, or undefined when it fits (or the queue has no limit). */
export function taskTooLarge(
  task: StepTask,
  limits: QueueLimits | undefined,
): PayloadTooLargeError | undefined {
  const max = limits?.maxTaskBytes ?? Infinity;
  // An unlimited queue costs no measuring.
  if (max === Infinity) return undefined;
  const bytes = jsonBytes(task);
  if (bytes <= max) return undefined;
  return new PayloadTooLargeError(`The task of step ${task.stepId} (attempt ${task.attempt})`, bytes, max);
}

/**
 * A queue that finds a task too large only once it has encoded it (SQS escapes some characters) throws
 * `PayloadTooLargeError`: the same rule applies to it as to {@link taskTooLarge}. Any other error is
 * thrown again.
 */
export function tooLargeWhenSent(error: unknown): PayloadTooLargeError {
  if (error instanceof PayloadTooLargeError) return error;
  throw error;
}

/** The failed outcome of an attempt that never ran (its task was too large), recorded at `recordedAt` (the engine's clock). */
export function failedAttempt(task: StepTask, error: TsWorkflowError, recordedAt: string): StepOutcome {
  return {
    runId: task.runId,
    stepId: task.stepId,
    attempt: task.attempt,
    recordedAt,
    issueSeq: task.issueSeq,
    ok: false,
    error: ruleError(error),
  };
}

/** An error the engine records for one of these rules: its name, message and code, without a stack from inside. */
export const ruleError = ({ name, message, code }: TsWorkflowError): SerializedError => ({
  name,
  message,
  code,
});

/**
 * The error of a failed attempt as the store will hold it: as it is when it fits `maxPayloadBytes`;
 * otherwise without its stack and, if that is not enough, with its message cut to a sixth of the limit
 * (a character is at most 6 bytes of JSON, so it always fits) and saying so. Its name, code and
 * `retryAfterMs` stay, so the step's retry policy treats it as it would the whole error.
 */
export function storableError(error: SerializedError, maxPayloadBytes: number): SerializedError {
  const bytes = jsonBytes(error);
  if (bytes <= maxPayloadBytes) return error;
  const { stack: _, ...cut } = error;
  if (jsonBytes(cut) > maxPayloadBytes)
    cut.message = `${error.message.slice(0, Math.max(0, maxPayloadBytes / 6 - 100))} [cut from ${bytes} bytes]`;
  return cut;
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}
