import type { SerializedError } from "./errors.ts";
import type { ResolvedStepOptions } from "./step.ts";

/** Errors that no retry can mend: the step fails at once. */
const NEVER_RETRIED = new Set(["FatalError", "NonSerializableError", "PayloadTooLargeError"]);

export const FIXED_RETRY_DELAY_MS = 60_000;

/** Milliseconds before attempt `attempt + 1`, or undefined when the step has failed for good. */
export function nextRetryDelay(
  options: ResolvedStepOptions,
  attempt: number,
  error: SerializedError,
): number | undefined {
  if (NEVER_RETRIED.has(error.name) || attempt > options.maxRetries) return undefined;
  if (error.retryAfterMs !== undefined) return error.retryAfterMs;
  if (options.retryDelay === "fixed") return FIXED_RETRY_DELAY_MS;
  if (options.retryDelay === "exponential")
    return Math.min(1000 * 2 ** (attempt - 1), options.maxRetryDelayMs);
  return options.retryDelay;
}
