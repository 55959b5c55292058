import { currentExecution } from "./context.ts";
import { type Duration, toMilliseconds } from "./durations.ts";
import { ConfigurationError, describe } from "./errors.ts";
import { definingRegistry } from "./registry.ts";

/** How long to wait before attempt n+1 of a failed step. */
export type RetryDelay = "fixed" | "exponential" | Duration;

/** Options of {@link step}. */
export interface StepOptions {
  /**
   * Attempts after the first one before the step fails. `RetryableError` and any other error are retried;
   * `FatalError` never is.
   * @default 3
   */
  maxRetries?: number;
  /**
   * `"fixed"` waits 60 s between attempts, `"exponential"` 1, 2, 4, 8 s… up to `maxRetryDelay`, and a
   * duration (`"5s"`, `{ minutes: 1 }`, ms) waits that long. A `RetryableError`'s `retryAfter` wins.
   * @default "fixed"
   */
  retryDelay?: RetryDelay;
  /**
   * The longest wait between attempts with `retryDelay: "exponential"`.
   * @default "10m"
   */
  maxRetryDelay?: Duration;
}

/** A step function, with its name and options attached. */
export interface StepDefinition<Args extends unknown[], Result> {
  (...args: Args): Promise<Awaited<Result>>;
  readonly stepName: string;
  readonly options: Readonly<ResolvedStepOptions>;
  /** The user's function, run by step executors. */
  readonly run: (...args: Args) => Promise<Result> | Result;
}

/** Any step, whatever its arguments. */
// biome-ignore lint/suspicious/noExplicitAny: the one place where any step type is named
export type AnyStep = StepDefinition<any[], unknown>;

export interface ResolvedStepOptions {
  maxRetries: number;
  retryDelay: "fixed" | "exponential" | number;
  maxRetryDelayMs: number;
}

const NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

/**
 * Defines a step: a function with side effects that runs at least once, whose result is recorded in the
 * run's log and never recomputed on replay. Called outside a workflow, it simply runs the function.
 * @example
 * import { step, RetryableError } from "tsworkflow";
 * export const chargeCard = step("charge_card", async (orderId: string, amount: number) => {
 *   const response = await fetch(`https://payments.example/charge/${orderId}`, { method: "POST" });
 *   if (response.status === 429) throw new RetryableError("rate limited", { retryAfter: "30s" });
 *   return { orderId, amount, charged: true };
 * }, { maxRetries: 5, retryDelay: "exponential" });
 * @throws ConfigurationError for an invalid name or `maxRetries`
 * @throws InvalidDurationError for an invalid `retryDelay` or `maxRetryDelay`
 */
export function step<Args extends unknown[], Result>(
  name: string,
  fn: (...args: Args) => Promise<Result> | Result,
  options: StepOptions = {},
): StepDefinition<Args, Result> {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new ConfigurationError(
      `Invalid step name ${describe(name)}: use 1 to 100 letters, digits, "_", ".", ":" or "-".`,
    );
  }
  if (typeof fn !== "function") throw new ConfigurationError(`step("${name}") needs a function.`);
  const resolved = resolveStepOptions(name, options);
  const call = (...args: Args): Promise<Awaited<Result>> => {
    const execution = currentExecution();
    if (execution) return execution.callStep(definition, args) as Promise<Awaited<Result>>;
    return Promise.resolve().then(() => fn(...args)) as Promise<Awaited<Result>>;
  };
  const definition = Object.assign(call, {
    stepName: name,
    options: Object.freeze(resolved),
    run: fn,
  }) as StepDefinition<Args, Result>;
  definingRegistry().registerStep(definition as AnyStep);
  return definition;
}

function resolveStepOptions(name: string, options: StepOptions): ResolvedStepOptions {
  const maxRetries = options.maxRetries ?? 3;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new ConfigurationError(
      `step("${name}"): maxRetries must be an integer >= 0, got ${describe(options.maxRetries)}.`,
    );
  }
  const delay = options.retryDelay ?? "fixed";
  return {
    maxRetries,
    retryDelay: delay === "fixed" || delay === "exponential" ? delay : toMilliseconds(delay),
    maxRetryDelayMs: toMilliseconds(options.maxRetryDelay ?? "10m"),
  };
}
