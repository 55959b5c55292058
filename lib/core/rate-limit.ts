import type { Duration } from "./durations.ts";
import { ConfigurationError, describe } from "./errors.ts";
import { checkOptionNames, durationOption, optionError } from "./options.ts";

/**
 * At most `limit` starts per `period` (per key), across every worker: the starts beyond it wait for
 * their turn in arrival order (delayed, never dropped or failed). Counted on a sliding window: in any
 * window of `period`, at most `limit` starts (see the README, "Flow control").
 */
// biome-ignore lint/suspicious/noExplicitAny: the key function takes the step's or workflow's own arguments
export interface RateLimit<Args extends unknown[] = any[]> {
  /** Starts allowed per period (per key); an integer >= 1. */
  limit: number;
  /** The window the starts are counted in: `"1s"`, `"1m"`, `{ hours: 1 }`, ms. */
  period: Duration;
  /** Makes one limit per key, from the arguments (e.g. the tenant). @default one limit for the step or workflow */
  key?: (...args: Args) => string;
}

/**
 * Added to a rate limit's period by the engine: a start's time is read just before the step function runs,
 * and the function's own first `Date.now()` may fall in the next millisecond; the window keeps the limit
 * on that clock too.
 */
export const CLOCK_TICK_MS = 1;

/** A rate limit with its period in ms, checked. */
export interface ResolvedRateLimit {
  limit: number;
  periodMs: number;
  key: ((...args: unknown[]) => string) | undefined;
}

/** The flow control options of a step or workflow, checked; a rate limit's period in ms. */
export interface ResolvedLimits {
  concurrency?: { limit: number; key: ResolvedRateLimit["key"] };
  rateLimit?: ResolvedRateLimit;
}

/**
 * Checks the `concurrency` and `rateLimit` options of a step or workflow.
 * @param owner how the error names the step or workflow, e.g. `step("send_email")`
 * @throws ConfigurationError for a limit that is not an object of known options, a `limit` that is not an
 *   integer >= 1, a `key` that is not a function or a `period` that is not a duration longer than 0
 */
export function checkLimits(
  owner: string,
  options: {
    concurrency?: { limit: number; key?: unknown };
    rateLimit?: { limit: number; key?: unknown; period: Duration };
  },
): ResolvedLimits {
  const resolved: ResolvedLimits = {};
  for (const option of ["concurrency", "rateLimit"] as const) {
    const declared: unknown = options[option];
    if (declared === undefined) continue;
    const rate = option === "rateLimit";
    checkOptionNames(owner, declared, rate ? ["limit", "period", "key"] : ["limit", "key"], option);
    const { limit, key, period } = declared as { limit: number; key?: unknown; period?: Duration };
    if (!Number.isInteger(limit) || limit < 1)
      throw optionError(owner, `${option}.limit`, "an integer >= 1", limit);
    if (key !== undefined && typeof key !== "function")
      throw optionError(owner, `${option}.key`, "a function", key);
    const periodMs = rate ? durationOption(owner, "rateLimit.period", period) : 1;
    if (periodMs < 1) throw optionError(owner, "rateLimit.period", "longer than 0", period);
    resolved[option] = { limit, periodMs, key: key as ResolvedRateLimit["key"] };
  }
  return resolved;
}

/**
 * The key that a limit's `key` function gives for a call with `args` (a copy: it cannot change them), or ""
 * without one.
 * @param owner how the error names the step or workflow, e.g. `step("send_email")`
 * @throws ConfigurationError when the function throws (its error kept as `cause`) or returns no string
 */
export function limitKey(
  owner: string,
  option: "concurrency" | "rateLimit",
  key: ((...args: never[]) => unknown) | undefined,
  args: readonly unknown[],
): string {
  if (!key) return "";
  let value: unknown;
  try {
    value = key(...(structuredClone(args) as never[]));
  } catch (error) {
    const message = `${owner}: ${option}.key must return a string, but it threw ${String(error)}.`;
    throw new ConfigurationError(message, { cause: error });
  }
  if (typeof value !== "string")
    throw new ConfigurationError(`${owner}: ${option}.key must return a string, got ${describe(value)}.`);
  return value;
}
