import { randomBytes } from "node:crypto";
import { InvalidIdempotencyKeyError, InvalidRunIdError } from "./errors.ts";

const RUN_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** Control characters, refused in idempotency keys, tag values and signal ids (one rule for all three). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** A new run id: sortable by creation time, e.g. `run_0mdx2k4a1b_9f3c2e7a1d5b`. */
export function newRunId(now = Date.now()): string {
  return `run_${now.toString(36).padStart(10, "0")}_${randomBytes(6).toString("hex")}`;
}

/**
 * @throws InvalidRunIdError for ids that could escape a directory or inject into a key
 */
export function assertRunId(runId: unknown): asserts runId is string {
  if (typeof runId !== "string" || !RUN_ID.test(runId)) throw new InvalidRunIdError(runId);
}

/** Idempotency keys: any text from 1 to 256 characters, without control characters. */
export function assertIdempotencyKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0 || key.length > 256 || CONTROL_CHARACTERS.test(key)) {
    throw new InvalidIdempotencyKeyError(key);
  }
}
