import { Cron } from "croner";
import { type Duration, toMilliseconds } from "../core/durations.ts";
import { ConfigurationError, describe } from "../core/errors.ts";
import { assertName } from "../core/names.ts";
import { checkOptionNames, durationOption } from "../core/options.ts";
import { toJson } from "../core/serialization.ts";
import { type AnyWorkflow, validateWorkflowInput, type WorkflowArgs } from "../core/workflow.ts";
import type { ScheduleDeclaration } from "../ports/schedule-store.ts";

/** What a tick does while the run of the previous tick is still going. */
export type OverlapPolicy = "skip" | "buffer-one" | "allow";
/** What happens to ticks missed while nothing ran (process down, paused store). */
export type CatchupPolicy = "none" | "last" | "all";

interface CommonScheduleOptions {
  /** @default "skip": a tick while the previous run is still going starts nothing */
  overlap?: OverlapPolicy;
  /** @default "none": ticks missed while nothing ran are dropped */
  catchup?: CatchupPolicy;
  /** Missed ticks older than this are dropped whatever `catchup` says. @default "1d" */
  catchupWindow?: Duration;
  /** Wake up to this much later than the tick, to spread load; the tick (and its run's key) stays the same. @default 0 */
  jitter?: Duration;
  /** No tick before this time. @default no limit */
  startAt?: Date;
  /** No tick after this time. @default no limit */
  endAt?: Date;
  /** Declared paused: no tick fires until `resumeSchedule`. @default false */
  paused?: boolean;
}

/**
 * `args`, typed from the workflow's parameters as `start()` types them: required when the workflow takes
 * arguments, optional (default `[]`) when it takes none or only optional ones.
 */
type ScheduleArgs<Args extends unknown[]> = [] extends Args
  ? {
      /** Arguments of each run. @default [] */
      args?: Args;
    }
  : {
      /** Arguments of each run, as `start(workflow, args)` takes them. */
      args: Args;
    };

/**
 * When a schedule ticks (a cron expression in a timezone, or a fixed interval), and what its runs get.
 * `Args` are the workflow's parameters (`WorkflowArgs<typeof workflow>`); `schedule()` infers them.
 */
export type ScheduleOptions<Args extends unknown[] = unknown[]> = CommonScheduleOptions &
  ScheduleArgs<Args> &
  (
    | {
        /** Cron expression (5 or 6 fields, parsed by croner), e.g. "0 9 * * MON-FRI". */
        cron: string;
        /** IANA timezone of the cron expression. @default "UTC" */
        timezone?: string;
        every?: never;
      }
    | {
        /** Fixed interval, e.g. "15m", counted from `startAt` (or the epoch). */
        every: Duration;
        cron?: never;
        timezone?: never;
      }
  );

/** A schedule declared in code: a workflow started at every tick. */
export interface ScheduleDefinition {
  readonly name: string;
  readonly workflow: AnyWorkflow;
  readonly options: ScheduleOptions;
  /** The first tick strictly after `after` (epoch ms), or undefined once the schedule has ended. */
  nextTick(after: number): number | undefined;
}

/** Every option of {@link ScheduleOptions}: another key is a mistake (a `timeZone` would leave the cron in UTC). */
const OPTION_NAMES = [
  "cron",
  "timezone",
  "every",
  "args",
  "overlap",
  "catchup",
  "catchupWindow",
  "jitter",
  "startAt",
  "endAt",
  "paused",
];
const OVERLAP_POLICIES: readonly OverlapPolicy[] = ["skip", "buffer-one", "allow"];
const CATCHUP_POLICIES: readonly CatchupPolicy[] = ["none", "last", "all"];

/** The schedules made by {@link schedule}, to find them among a module's exports. */
const declared = new WeakSet<object>();

/**
 * Declares a schedule: `workflow` starts at every tick, each tick's run keyed
 * `schedule:<name>:<tick ISO>` so that a tick starts at most one run. `args` are typed from the workflow's
 * parameters, as `start()`'s are. Every option is checked here, and `args` against the workflow's `input`
 * schema as `start()` checks them, so that a mistake fails at once and not at a tick.
 * @example
 * import { schedule } from "tsworkflow/engine";
 * export const daily = schedule("daily-report", report, { cron: "0 9 * * MON-FRI", timezone: "Europe/Paris" });
 * @throws ConfigurationError naming the option at fault, its value and what it may be
 */
export function schedule<W extends AnyWorkflow>(
  name: string,
  workflow: W,
  options: ScheduleOptions<WorkflowArgs<W>>,
): ScheduleDefinition {
  assertName("schedule name", name);
  if (typeof workflow?.name !== "string")
    throw new ConfigurationError(
      `Schedule "${name}" needs a workflow made with workflow(), got ${describe(workflow)}.`,
    );
  if (typeof options !== "object" || options === null)
    throw new ConfigurationError(
      `Schedule "${name}" needs options with "cron" or "every", e.g. { cron: "0 9 * * *" }, got ${describe(options)}.`,
    );
  checkOptionNames(`Schedule "${name}"`, options, OPTION_NAMES);
  const nextTick = ticker(name, options);
  oneOf(name, "overlap", options.overlap, OVERLAP_POLICIES);
  oneOf(name, "catchup", options.catchup, CATCHUP_POLICIES);
  duration(name, "catchupWindow", options.catchupWindow);
  duration(name, "jitter", options.jitter);
  if (options.paused !== undefined && typeof options.paused !== "boolean")
    throw invalid(name, "paused", options.paused, "use true or false");
  try {
    // What start() checks: each tick would fail the same way.
    toJson(validateWorkflowInput(workflow, options.args ?? []), `The input of workflow "${workflow.name}"`);
  } catch (error) {
    throw new ConfigurationError(
      `Schedule "${name}": its args would fail the start of every tick: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const definition: ScheduleDefinition = { name, workflow, options, nextTick };
  declared.add(definition);
  return definition;
}

/**
 * The schedules made by {@link schedule} among a workflows module's exports, alone or in arrays, each once:
 * what `tsworkflow worker`, `runWorker` and `tsworkflow dev` fire.
 */
export function exportedSchedules(exported: Record<string, unknown>): ScheduleDefinition[] {
  const found = new Set<ScheduleDefinition>();
  for (const value of Object.values(exported))
    for (const item of Array.isArray(value) ? value : [value])
      if (typeof item === "object" && item !== null && declared.has(item)) found.add(item);
  return [...found];
}

/**
 * When a schedule ticks: its `cron` (in its `timezone`) or `every`, bounded by `startAt` and `endAt`.
 * @throws ConfigurationError for a bad cron expression (or one that no date matches), timezone, interval or bounds
 */
export function ticker(
  name: string,
  options: Pick<ScheduleOptions, "cron" | "timezone" | "every" | "startAt" | "endAt">,
): (after: number) => number | undefined {
  const start = instant(name, "startAt", options.startAt) ?? 0;
  const end = instant(name, "endAt", options.endAt) ?? Number.POSITIVE_INFINITY;
  if (end <= start)
    throw new ConfigurationError(
      `Schedule "${name}": endAt ${describe(options.endAt)} is not after startAt ${describe(options.startAt)}: no tick could fire.`,
    );
  const bounded = (next: (after: number) => number | undefined) => (after: number) => {
    const tick = next(Math.max(after, start - 1));
    return tick === undefined || tick > end ? undefined : tick;
  };
  if (options.cron !== undefined && options.every !== undefined)
    throw new ConfigurationError(
      `Schedule "${name}" has both "cron" and "every": give one, a cron expression or a fixed interval.`,
    );
  if (options.cron !== undefined) {
    const timezone = options.timezone ?? "UTC";
    try {
      new Intl.DateTimeFormat("en", { timeZone: timezone });
    } catch {
      throw invalid(
        name,
        "timezone",
        timezone,
        'use an IANA timezone name, e.g. "Europe/Paris", "America/New_York" or "UTC"',
      );
    }
    const fieldsHint =
      'Use 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), e.g. "0 9 * * MON-FRI"';
    // croner also takes a seventh field (the year), which AWS's cron and the docs do not.
    const fields = typeof options.cron === "string" ? options.cron.trim().split(/\s+/).length : 0;
    if (fields === 7) throw invalid(name, "cron expression", options.cron, `it has 7 fields. ${fieldsHint}`);
    let cron: Cron;
    try {
      cron = new Cron(options.cron, { timezone, paused: true });
    } catch (error) {
      // croner's own message counts 5, 6 or 7 parts as valid: say only what tsworkflow takes.
      const message = (error as Error).message
        .replace(/\.$/, "")
        .replace(
          "exactly five, six, or seven space separated parts are required",
          "5 or 6 fields are required",
        );
      throw invalid(name, "cron expression", options.cron, `${message}. ${fieldsHint}`);
    }
    // croner parses "0 0 30 2 *" (February 30) and then finds no date: the schedule would never fire.
    if (!cron.nextRun())
      throw invalid(
        name,
        "cron expression",
        options.cron,
        'no date matches it (a day of the month that none of its months has, such as February 30). Fix the day-of-month or month field, e.g. "0 0 L 2 *" for the last day of February',
      );
    return bounded((after) => cron.nextRun(new Date(after))?.getTime());
  }
  if (options.timezone !== undefined)
    throw new ConfigurationError(
      `Schedule "${name}": "timezone" applies to a cron expression; "every" counts fixed intervals from startAt.`,
    );
  if (options.every === undefined)
    throw new ConfigurationError(`Schedule "${name}" needs either "cron" or "every".`);
  const period = duration(name, "every", options.every) as number;
  if (period < 1000) throw new ConfigurationError(`Schedule "${name}": "every" must be at least 1 second.`);
  return bounded((after) => start + (Math.floor((after - start) / period) + 1) * period);
}

function invalid(name: string, option: string, value: unknown, allowed: string): ConfigurationError {
  return new ConfigurationError(`Schedule "${name}": invalid ${option} ${describe(value)}: ${allowed}.`);
}

function oneOf(name: string, option: string, value: unknown, allowed: readonly string[]): void {
  if (value !== undefined && !allowed.includes(value as string))
    throw invalid(name, option, value, `use ${allowed.map((item) => `"${item}"`).join(", ")}`);
}

function duration(name: string, option: string, value: Duration | undefined): number | undefined {
  return value === undefined ? undefined : durationOption(`Schedule "${name}"`, option, value);
}

function instant(name: string, option: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Date) || Number.isNaN(value.getTime()))
    throw invalid(name, option, value, "use a valid Date");
  return value.getTime();
}

/** What a schedule's state records of its declaration, for tools that do not load the code. */
export function declarationOf(definition: ScheduleDefinition): ScheduleDeclaration {
  const { options } = definition;
  return {
    workflow: definition.workflow.name,
    ...(options.cron === undefined ? {} : { cron: options.cron, timezone: options.timezone ?? "UTC" }),
    ...(options.every === undefined ? {} : { everyMs: toMilliseconds(options.every) }),
    ...(options.startAt ? { startAt: options.startAt.getTime() } : {}),
    ...(options.endAt ? { endAt: options.endAt.getTime() } : {}),
  };
}

/** The idempotency key of the run of one tick. */
export function tickKey(name: string, tick: number): string {
  return `schedule:${name}:${new Date(tick).toISOString()}`;
}

/** The idempotency key of the run of a trigger made at `at` (epoch ms), outside the ticks. */
export function triggerKey(name: string, at: number): string {
  return `schedule:${name}:manual:${new Date(at).toISOString()}`;
}
