/**
 * Service limits the AWS adapters check before they call the service, so that an oversized value
 * fails once with a clear `PayloadTooLargeError` instead of a service error that SQS would retry
 * until the message lands in the dead-letter queue.
 */

/** DynamoDB's item size limit (names and values together). */
export const DYNAMODB_ITEM_LIMIT_BYTES = 400 * 1024;

/**
 * Bytes of serialized events kept in one commit item. Below the item limit to leave room for the
 * keys and the other attributes; a larger commit is split across part items written in one
 * transaction.
 */
export const COMMIT_PART_BYTES = 350 * 1024;

/** DynamoDB transactions: at most 4 MB (and 100 items, which the parts of a commit never reach). */
export const TRANSACTION_MAX_BYTES = 4 * 1024 * 1024;

/** A commit (all its events, serialized) may be at most this large: the transaction limit less the keys. */
export const COMMIT_LIMIT_BYTES = TRANSACTION_MAX_BYTES - 64 * 1024;

/**
 * The run document keeps a copy of the run's input, result or error only when it is this small (a
 * read of the log would cost more than the copy); a larger one stays in the log alone and the
 * document points to the commit that holds it. So a document is a few KB whatever the run holds.
 */
export const RUN_DOCUMENT_INLINE_BYTES = 4 * 1024;

/**
 * With an S3 payload bucket: a payload (one field of an event or outcome) larger than this goes to S3
 * and the item keeps a reference.
 */
export const DEFAULT_OFFLOAD_THRESHOLD_BYTES = 64 * 1024;

/** With an S3 payload bucket: the largest payload, as JSON (Temporal stops at 2 MB, Lambda durable functions at 256 KB). */
export const S3_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

/**
 * SQS's classic message limit. (SQS raised it to 1 MiB in 2025; the adapters keep 256 KiB so that
 * the same bundle works with every queue and with LocalStack.)
 */
export const SQS_MESSAGE_LIMIT_BYTES = 256 * 1024;

/** UTF-8 size of a string. */
export function byteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/** SQS's longest `DelaySeconds`: 15 minutes. */
export const MAX_SQS_DELAY_SECONDS = 900;
