import { MAX_DURATION_MS } from "./durations.ts";
import type { ErrorCode, SerializedError } from "./errors.ts";
import type { ResolvedStepOptions } from "./step.ts";

/**
 * Errors that no retry can mend, by code (so a subclass of `FatalError` with a name of its own is not
 * retried either): the step fails at once.
 */
const NEVER_RETRIED: ReadonlySet<string> = new Set<ErrorCode>([
  "FATAL",
  "NOT_SERIALIZABLE",
  "PAYLOAD_TOO_LARGE",
  "INVALID_DURATION",
  // sleep(), waitForEvent(), runChild()… called in a step's function: every attempt would throw it.
  "NOT_IN_WORKFLOW",
  // A step whose declared limits this deployment does not enforce (see `unenforcedLimit`).
  "CONFIGURATION",
]);

export const FIXED_RETRY_DELAY_MS = 60_000;

/** Milliseconds before attempt `attempt + 1`, or undefined when the step has failed for good. */
export function nextRetryDelay(
  options: ResolvedStepOptions,
  attempt: number,
  error: SerializedError,
): number | undefined {
  if ((error.code !== undefined && NEVER_RETRIED.has(error.code)) || attempt > options.maxRetries)
    return undefined;
  // A delay read from a log (written by any version) is clamped: a retry never waits past 1,000 years.
  if (error.retryAfterMs !== undefined) return Math.min(Math.max(0, error.retryAfterMs), MAX_DURATION_MS);
  if (options.retryDelay === "fixed") return FIXED_RETRY_DELAY_MS;
  if (options.retryDelay === "exponential")
    return Math.min(1000 * 2 ** (attempt - 1), options.maxRetryDelayMs);
  return options.retryDelay;
}
