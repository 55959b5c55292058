import type { $ZodType } from "zod/v4/core";
import type { Duration } from "./durations.ts";
import { ConfigurationError, WorkflowInputError } from "./errors.ts";
import { assertName } from "./names.ts";
import { checkOptionNames, durationOption, optionError, schemaOption } from "./options.ts";
import { checkLimits, type RateLimit } from "./rate-limit.ts";
import { definingRegistry } from "./registry.ts";
import { safeParseWithMessages } from "./schema.ts";
import type { RequireJsonParameters } from "./serialization.ts";

/** A limit on how many runs of a workflow are active at once (started and not finished, sleeping included). */
// biome-ignore lint/suspicious/noExplicitAny: the key function takes the workflow's own arguments
export interface WorkflowConcurrency<Args extends unknown[] = any[]> {
  /** Runs (per key) active at once; the others stay `pending` and start in the order they were created. */
  limit: number;
  /** Makes one limit per key, from the run's arguments (e.g. the customer). @default one limit for the workflow */
  key?: (...args: Args) => string;
}

/** Options of {@link workflow}. */
// biome-ignore lint/suspicious/noExplicitAny: the default accepts any workflow's arguments
export interface WorkflowOptions<Args extends unknown[] = any[]> {
  /**
   * Fail a run that has not finished this long after it started, with a `MaxDurationExceededError`.
   * @default no limit
   */
  maxDuration?: Duration;
  /**
   * A zod schema (regular zod or zod/mini) that validates the input at `start()`, before anything is
   * stored. A `z.tuple([...])` validates the whole argument list; any other schema validates the single
   * argument.
   * @default no validation
   */
  input?: $ZodType;
  /**
   * A label for this code of the workflow, recorded in each run's `workflow_started`. Several versions of a
   * workflow can be registered side by side (`workflow("onboarding", fnV1, { version: "1" })` beside v2):
   * each run goes on with the code it started with, and a run whose version no registered code has is left
   * as it is with a `WorkflowVersionNotFoundError`. Starting by name picks the highest version (compared
   * numerically where the labels are numbers, e.g. "10" after "9"). 1 to 64 letters, digits, ".", "_", "-".
   * @default no version: runs and code match by name alone
   * @example
   * import { workflow } from "tsworkflow";
   * export const onboardingV1 = workflow("onboarding", async (user: string) => `v1 ${user}`, { version: "1" });
   * export const onboarding = workflow("onboarding", async (user: string) => `v2 ${user}`, { version: "2" });
   */
  version?: string;
  /**
   * At most `limit` runs of this workflow (per `key`) are active at once, across every worker: a run
   * started beyond it stays `pending` until a run of its key finishes, and runs start in the order they
   * were created. `{ limit: 1, key: (customerId) => customerId }` runs one run per customer at a time.
   * See the README, "Flow control".
   * @default no limit
   * @example
   * import { workflow } from "tsworkflow";
   * export const sync = workflow("sync_account", async (customerId: string) => customerId, {
   *   concurrency: { limit: 1, key: (customerId) => customerId },
   * });
   */
  concurrency?: WorkflowConcurrency<Args>;
  /**
   * At most `limit` runs of this workflow (per `key`) start per `period`, across every worker: a run beyond
   * it stays `pending` until its turn (delayed, never dropped). With `concurrency` too, a run takes its
   * concurrency slot first, then its start. See the README, "Flow control".
   * @default no limit
   * @example
   * import { workflow } from "tsworkflow";
   * export const report = workflow("tenant_report", async (tenant: string) => tenant, {
   *   rateLimit: { limit: 10, period: "1h", key: (tenant) => tenant },
   * });
   */
  rateLimit?: RateLimit<Args>;
}

/** A registered workflow: pass it to `start()`. */
export interface WorkflowDefinition<Args extends unknown[], Result> {
  readonly name: string;
  readonly fn: (...args: Args) => Promise<Result>;
  readonly options: WorkflowOptions;
  /** The code's `version` label (see {@link WorkflowOptions.version}), if any. */
  readonly version: string | undefined;
  /** The deadline length in ms, from `maxDuration`. */
  readonly maxDurationMs: number | undefined;
}

/** Any workflow, whatever its arguments (function parameters are contravariant, so `unknown[]` would not do). */
// biome-ignore lint/suspicious/noExplicitAny: the one place where any workflow type is named
export type AnyWorkflow = WorkflowDefinition<any[], unknown>;

export type WorkflowArgs<W> = W extends WorkflowDefinition<infer A, unknown> ? A : never;
// biome-ignore lint/suspicious/noExplicitAny: any argument list, so that typed workflows match
export type WorkflowResult<W> = W extends WorkflowDefinition<any[], infer R> ? R : never;

const VERSION = /^[A-Za-z0-9._-]{1,64}$/;

/** Every option of {@link WorkflowOptions} (the compiler checks that none is missing). */
const OPTION_NAMES = Object.keys({
  maxDuration: 0,
  input: 0,
  version: 0,
  concurrency: 0,
  rateLimit: 0,
} satisfies Record<keyof WorkflowOptions, 0>);

/**
 * Defines a durable workflow: a plain async function whose steps, sleeps and logs are recorded, so that
 * the run survives crashes and restarts. Workflow code must be deterministic: do side effects in steps. Its
 * input is recorded as JSON, so a parameter type that does not survive JSON (a `Date`, a `Map`, a class
 * instance) is a compile error (see {@link RequireJsonParameters}).
 * @example
 * import { workflow, step, sleep } from "tsworkflow";
 * const sendEmail = step("send_email", async (to: string) => `sent to ${to}`);
 * export const onboarding = workflow("onboarding", async (userId: string) => {
 *   await sendEmail(userId);
 *   await sleep("1d");
 *   return "done";
 * }, { maxDuration: "30d" });
 * @throws ConfigurationError for an invalid name or option, naming the workflow, the option and what it may be
 *   (`workflow("onboarding"): maxDuration must be a duration such as "30s", ... got "5 minutes".`), or an
 *   unknown option
 */
export function workflow<Args extends unknown[], Result>(
  name: string,
  fn: ((...args: Args) => Promise<Result>) & NoInfer<RequireJsonParameters<"workflow", Args>>,
  options: WorkflowOptions<Args> = {},
): WorkflowDefinition<Args, Result> {
  assertName("workflow name", name);
  if (typeof fn !== "function") throw new ConfigurationError(`workflow("${name}") needs an async function.`);
  const owner = `workflow("${name}")`;
  checkOptionNames(owner, options, OPTION_NAMES);
  const { version, input, maxDuration } = options;
  if (version !== undefined && (typeof version !== "string" || !VERSION.test(version)))
    throw optionError(owner, "version", '1 to 64 letters, digits, ".", "_" or "-"', version);
  schemaOption(owner, "input", input);
  checkLimits(owner, options);
  const maxDurationMs =
    maxDuration === undefined ? undefined : durationOption(owner, "maxDuration", maxDuration);
  const definition: WorkflowDefinition<Args, Result> = Object.freeze({
    name,
    fn,
    options,
    version,
    maxDurationMs,
  });
  definingRegistry().registerWorkflow(definition as AnyWorkflow);
  return definition;
}

/**
 * Validates `args` against the workflow's `input` schema; returns the parsed arguments.
 * @throws WorkflowInputError naming each field at fault
 */
export function validateWorkflowInput(definition: AnyWorkflow, args: unknown[]): unknown[] {
  if (!Array.isArray(args)) {
    throw new WorkflowInputError(definition.name, [
      { path: "", message: "arguments must be an array, e.g. start(wf, [arg1, arg2])" },
    ]);
  }
  const schema = definition.options.input;
  if (!schema) return args;
  const isTuple = schema._zod.def.type === "tuple";
  if (!isTuple && args.length !== 1) {
    throw new WorkflowInputError(definition.name, [
      { path: "", message: `expected exactly 1 argument, got ${args.length}` },
    ]);
  }
  const parsed = safeParseWithMessages(schema, isTuple ? args : args[0]);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({
      path: issue.path.map(String).join("."),
      message: issue.message,
    }));
    throw new WorkflowInputError(definition.name, issues);
  }
  return isTuple ? (parsed.data as unknown[]) : [parsed.data];
}
