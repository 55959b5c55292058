import { currentExecution } from "./context.ts";
import type { Duration } from "./durations.ts";
import { ConfigurationError } from "./errors.ts";
import { assertName } from "./names.ts";
import { A_DURATION, checkOptionNames, durationOption, optionError } from "./options.ts";
import { checkLimits, type RateLimit, type ResolvedLimits } from "./rate-limit.ts";
import { definingRegistry } from "./registry.ts";
import type { RequireJsonParameters, Serialized } from "./serialization.ts";

/** How long to wait before attempt n+1 of a failed step. */
export type RetryDelay = "fixed" | "exponential" | Duration;

/** A limit on how many attempts of a step run at once, across all runs, workers and Lambdas. */
// biome-ignore lint/suspicious/noExplicitAny: the key function takes the step's own arguments
export interface StepConcurrency<Args extends unknown[] = any[]> {
  /** Attempts of this step (per key) that may run at once; the others wait their turn in arrival order. */
  limit: number;
  /**
   * Makes one limit per key, from the step's arguments (e.g. the tenant). @default one limit for the step
   */
  key?: (...args: Args) => string;
}

/** Options of {@link step}. */
// biome-ignore lint/suspicious/noExplicitAny: the default accepts any step's arguments
export interface StepOptions<Args extends unknown[] = any[]> {
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
  /**
   * At most `limit` attempts of this step (per `key`) run at once, across every run, worker and Lambda;
   * the others wait in arrival order, using up no attempt (see the README, "Flow control").
   * @default no limit
   */
  concurrency?: StepConcurrency<Args>;
  /**
   * At most `limit` attempts of this step (per `key`) start per `period`, across every run, worker and
   * Lambda; the others wait their turn, delayed, using up no attempt (see the README, "Flow control").
   * @default no limit
   * @example
   * import { step } from "tsworkflow";
   * export const sendEmail = step("send_email", async (tenant: string, to: string) => `sent to ${to}`, {
   *   rateLimit: { limit: 100, period: "1m", key: (tenant) => tenant },
   * });
   */
  rateLimit?: RateLimit<Args>;
  /**
   * Whether the step may run inside the activation that started it when it is the run's only next step
   * (on a runtime that runs steps inline: the embedded runtime, Redis workers and AWS), saving a queue hop.
   * `false` always sends it through the step queue: on AWS it then runs in the step function, with its
   * own timeout (`stepTimeout`), for a step that may run longer than a workflow invocation has left.
   * @default true
   * @example
   * import { step } from "tsworkflow";
   * export const renderVideo = step("render_video", async (id: string) => `rendered ${id}`, { inline: false });
   */
  inline?: boolean;
}

/** A step function, with its name and options attached. */
export interface StepDefinition<Args extends unknown[], Result> {
  /**
   * Runs the step in a workflow and resolves with its result as the run's log gives it back, on the first
   * run as on a replay: a `Date` as its ISO string, `undefined` as `null` (see {@link Serialized}).
   * Called outside a workflow (in a unit test), it runs the function and resolves with its value as it is,
   * not round-tripped: the type is that of a call in a workflow.
   */
  (...args: Args): Promise<Serialized<Awaited<Result>>>;
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
  concurrency?: ResolvedLimits["concurrency"];
  rateLimit?: ResolvedLimits["rateLimit"];
  inline: boolean;
}

/**
 * Defines a step: a function with side effects that runs at least once, whose result is recorded in the
 * run's log and never recomputed on replay. Called outside a workflow, it simply runs the function. Its
 * arguments are recorded as JSON, so a parameter type that does not survive JSON (a `Date`, a `Map`, a class
 * instance) is a compile error (see {@link RequireJsonParameters}).
 * @example
 * import { step, RetryableError } from "tsworkflow";
 * export const chargeCard = step("charge_card", async (orderId: string, amount: number) => {
 *   const response = await fetch(`https://payments.example/charge/${orderId}`, { method: "POST" });
 *   if (response.status === 429) throw new RetryableError("rate limited", { retryAfter: "30s" });
 *   return { orderId, amount, charged: true };
 * }, { maxRetries: 5, retryDelay: "exponential", concurrency: { limit: 5 } });
 * @throws ConfigurationError for an invalid name or option, naming the step, the option and what it may be
 *   (`step("charge_card"): maxRetries must be an integer >= 0, got -1.`), or an unknown option
 */
export function step<Args extends unknown[], Result>(
  name: string,
  fn: ((...args: Args) => Promise<Result> | Result) & NoInfer<RequireJsonParameters<"step", Args>>,
  options: StepOptions<Args> = {},
): StepDefinition<Args, Result> {
  assertName("step name", name);
  if (typeof fn !== "function") throw new ConfigurationError(`step("${name}") needs a function.`);
  const resolved = resolveStepOptions(name, options);
  const call = (...args: Args): Promise<Serialized<Awaited<Result>>> => {
    const execution = currentExecution();
    if (execution) return execution.callStep(definition, args) as Promise<Serialized<Awaited<Result>>>;
    return Promise.resolve().then(() => fn(...args)) as Promise<Serialized<Awaited<Result>>>;
  };
  const definition = Object.assign(call, {
    stepName: name,
    options: Object.freeze(resolved),
    run: fn,
  }) as StepDefinition<Args, Result>;
  definingRegistry().registerStep(definition as AnyStep);
  return definition;
}

/** Every option of {@link StepOptions} (the compiler checks that none is missing). */
const OPTION_NAMES = Object.keys({
  maxRetries: 0,
  retryDelay: 0,
  maxRetryDelay: 0,
  concurrency: 0,
  rateLimit: 0,
  inline: 0,
} satisfies Record<keyof StepOptions, 0>);

function resolveStepOptions<Args extends unknown[]>(
  name: string,
  options: StepOptions<Args>,
): ResolvedStepOptions {
  const owner = `step("${name}")`;
  checkOptionNames(owner, options, OPTION_NAMES);
  const { maxRetries = 3, retryDelay = "fixed", maxRetryDelay = "10m", inline = true } = options;
  if (!Number.isInteger(maxRetries) || maxRetries < 0)
    throw optionError(owner, "maxRetries", "an integer >= 0", maxRetries);
  if (typeof inline !== "boolean") throw optionError(owner, "inline", "true or false", inline);
  return {
    inline,
    maxRetries,
    retryDelay:
      retryDelay === "fixed" || retryDelay === "exponential"
        ? retryDelay
        : durationOption(owner, "retryDelay", retryDelay, `"fixed", "exponential" or ${A_DURATION}`),
    maxRetryDelayMs: durationOption(owner, "maxRetryDelay", maxRetryDelay),
    ...checkLimits(owner, options),
  };
}
