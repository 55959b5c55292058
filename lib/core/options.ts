/**
 * Checks of options (`step()`, `workflow()`, `schedule()` at definition time; the runtimes', `start()`'s,
 * `waitForEvent()`'s… at the call): a bad option throws a `ConfigurationError` that names its owner, the
 * option, what it must be and the value given.
 */
import { type Duration, measureDuration } from "./durations.ts";
import { ConfigurationError, describe } from "./errors.ts";

/** What a duration option takes, as its error message says it. */
export const A_DURATION = 'a duration such as "30s", "5m", "2h", { minutes: 1 } or milliseconds';

/**
 * The error of a bad option: `step("send_email"): maxRetries must be an integer >= 0, got -1.`
 * @param owner - how the message names the step or workflow, e.g. `step("send_email")`
 * @param option - the option, e.g. `rateLimit.period`
 * @param expected - what the option must be
 * @param why - what is wrong with the value, when `expected` does not say it all
 */
export function optionError(
  owner: string,
  option: string,
  expected: string,
  value: unknown,
  why = "",
): ConfigurationError {
  return new ConfigurationError(
    `${owner}: ${option} must be ${expected}, got ${describe(value)}${why && ` (${why})`}.`,
  );
}

/**
 * The milliseconds of a duration option.
 * @param expected - what the option may be, for the message
 * @throws ConfigurationError for a value that is not a duration, or one over 1000 years
 */
export function durationOption(owner: string, option: string, value: unknown, expected = A_DURATION): number {
  const ms = measureDuration(value as Duration);
  if (typeof ms === "string") throw optionError(owner, option, expected, value, ms);
  return ms;
}

/**
 * Checks an integer option, left out (its default) or an integer from `min` up.
 * @throws ConfigurationError otherwise
 */
export function integerOption(owner: string, option: string, value: unknown, min: number): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < min))
    throw optionError(owner, option, `an integer >= ${min}`, value);
}

/** The longest a Node timer waits: 2^31-1 ms, about 24.8 days (a longer delay fires at once). */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Checks a milliseconds option that a timer waits for (a poll, a lease, a sweep), left out (its default) or an
 * integer from `min` to `MAX_TIMER_MS`.
 * @throws ConfigurationError otherwise
 */
export function timerOption(owner: string, option: string, value: unknown, min: number): void {
  integerOption(owner, option, value, min);
  if ((value as number) > MAX_TIMER_MS)
    throw optionError(
      owner,
      option,
      `at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest a timer waits)`,
      value,
    );
}

/**
 * A directory option: an empty path would be the current directory without a word.
 * @throws ConfigurationError unless `value` is left out or a path that is not empty
 */
export function directoryOption(owner: string, option: string, value: unknown): void {
  if (value !== undefined && (typeof value !== "string" || value === ""))
    throw optionError(owner, option, 'a directory path, e.g. "./.tsworkflow"', value);
}

/** @throws ConfigurationError unless `value` is left out, true or false */
export function booleanOption(owner: string, option: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean")
    throw optionError(owner, option, "true or false", value);
}

/** @throws ConfigurationError unless `value` is left out or a zod 4 schema, regular zod or zod/mini (what validation reads of one) */
export function schemaOption(owner: string, option: string, value: unknown): void {
  if (value !== undefined && typeof (value as { _zod?: { def?: unknown } })._zod?.def !== "object")
    throw optionError(owner, option, "a zod schema", value);
}

/**
 * Checks that `options` is an object whose keys are all in `known`: a misspelt option (`retires`, `timeZone`)
 * would otherwise be ignored without a word, and TypeScript flags one only in an object literal.
 * @param parent - the option that holds these ones, e.g. `rateLimit` (none: the options themselves)
 * @throws ConfigurationError for a value that is not an object, or naming an unknown key and the known ones
 */
export function checkOptionNames(
  owner: string,
  options: unknown,
  known: readonly string[],
  parent?: string,
): asserts options is object {
  if (typeof options !== "object" || options === null || Array.isArray(options))
    throw optionError(owner, parent ?? "options", "an object", options);
  const unknown = Object.keys(options).find((key) => !known.includes(key));
  if (unknown === undefined) return;
  const named = (key: string) => (parent ? `${parent}.${key}` : key);
  throw new ConfigurationError(
    `${owner}: unknown option "${named(unknown)}". The options are ${known.map(named).join(", ")}.`,
  );
}
