import { toMilliseconds } from "../../core/durations.ts";
import { UnsupportedScheduleError } from "../../core/errors.ts";
import type { ScheduleDefinition } from "../../schedules/schedule.ts";

/** A schedule's recurrence as EventBridge Scheduler takes it. */
export interface EventBridgeRecurrence {
  /** `cron(minutes hours day-of-month month day-of-week year)` or `rate(value unit)`. */
  expression: string;
  /** IANA time zone of a cron expression; `rate()` ignores it. */
  timezone: string;
}

const NICKNAMES: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

/**
 * The EventBridge Scheduler form of a declared schedule: a 5-field cron becomes the 6-field
 * `cron(...)` (a `?` in whichever of day-of-month and day-of-week is `*`, days of the week numbered
 * 1 = Sunday to 7 = Saturday, a `*` year); `every` becomes `rate(...)`.
 * @example
 * import { eventBridgeRecurrence } from "tsworkflow/aws";
 * eventBridgeRecurrence(schedule("daily-report", report, { cron: "0 9 * * MON-FRI", timezone: "Europe/Paris" }));
 * // { expression: "cron(0 9 ? * MON-FRI *)", timezone: "Europe/Paris" }
 * @throws UnsupportedScheduleError for what EventBridge Scheduler cannot express: both day fields
 * restricted (cron fires when either matches), a seconds field other than 0, an `every` that is not a
 * whole number of minutes
 */
export function eventBridgeRecurrence(definition: ScheduleDefinition): EventBridgeRecurrence {
  const { options, name } = definition;
  if (options.cron !== undefined)
    return { expression: eventBridgeCron(name, options.cron), timezone: options.timezone ?? "UTC" };
  return { expression: eventBridgeRate(name, toMilliseconds(options.every)), timezone: "UTC" };
}

/** `cron(...)` of EventBridge Scheduler for a croner expression (5 fields, or 6 with seconds 0). */
export function eventBridgeCron(name: string, cron: string): string {
  const text = cron.trim();
  let fields = (NICKNAMES[text.toLowerCase()] ?? text)
    .split(/\s+/)
    .map((field) => (field === "?" ? "*" : field));
  if (fields.length === 6) {
    if (fields[0] !== "0")
      throw new UnsupportedScheduleError(
        name,
        `the cron expression "${cron}" has a seconds field; EventBridge Scheduler fires on whole minutes. Use 5 fields (or seconds 0).`,
      );
    fields = fields.slice(1);
  }
  if (fields.length !== 5)
    throw new UnsupportedScheduleError(
      name,
      `the cron expression "${cron}" has ${fields.length} fields; on AWS use 5 (minute hour day-of-month month day-of-week).`,
    );
  const [minute, hour, dom, month, dow] = fields as [string, string, string, string, string];
  if (dom !== "*" && dow !== "*")
    throw new UnsupportedScheduleError(
      name,
      `the cron expression "${cron}" restricts both the day of the month (${dom}) and the day of the week (${dow}): cron fires when either matches, EventBridge Scheduler cannot say that. Declare two schedules, one for each day field.`,
    );
  const days = dow === "*" ? [steps(dom, 1), "?"] : ["?", weekdays(name, cron, dow)];
  return `cron(${steps(minute, 0)} ${steps(hour, 0)} ${days[0]} ${steps(month, 1)} ${days[1]} *)`;
}

/** `*\/n` is written `<first>/n` in EventBridge's syntax. */
function steps(field: string, first: number): string {
  return field
    .split(",")
    .map((part) => part.replace(/^\*\//, `${first}/`))
    .join(",");
}

/** cron numbers days 0-7 from Sunday (0 and 7), EventBridge 1-7 from Sunday. */
function weekdays(name: string, cron: string, field: string): string {
  const day = (text: string) => (/^\d+$/.test(text) ? String((Number(text) % 7) + 1) : text.toUpperCase());
  return field
    .split(",")
    .map((part) => {
      if (part.startsWith("*/")) return `1/${part.slice(2)}`;
      const [range, step] = part.split("/") as [string, string | undefined];
      const special = /^(\d+)([L]|#\d)$/i.exec(range);
      if (special) return `${day(special[1] as string)}${(special[2] as string).toUpperCase()}`;
      const [from, to] = range.split("-") as [string, string | undefined];
      if (to === undefined) return `${day(from)}${step ? `/${step}` : ""}`;
      const [a, b] = [day(from), day(to)];
      if (/^\d+$/.test(a) && /^\d+$/.test(b) && Number(a) > Number(b)) {
        // 5-7 (Friday to Sunday) is 6-1 in EventBridge's numbering: split where the week wraps.
        if (step)
          throw new UnsupportedScheduleError(
            name,
            `the day-of-week range "${part}" of "${cron}" wraps past Saturday with a step; list the days instead.`,
          );
        return `${a}-7,1${b === "1" ? "" : `-${b}`}`;
      }
      return `${a}-${b}${step ? `/${step}` : ""}`;
    })
    .join(",");
}

/** `rate(n minutes|hours|days)` for an interval of whole minutes. */
export function eventBridgeRate(name: string, periodMs: number): string {
  if (periodMs < 60_000 || periodMs % 60_000 !== 0)
    throw new UnsupportedScheduleError(
      name,
      `"every" is ${periodMs / 1000} s; EventBridge Scheduler's rate() counts whole minutes. Use a multiple of 1 minute.`,
    );
  const minutes = periodMs / 60_000;
  const [value, unit] =
    minutes % 1440 === 0
      ? [minutes / 1440, "day"]
      : minutes % 60 === 0
        ? [minutes / 60, "hour"]
        : [minutes, "minute"];
  return `rate(${value} ${unit}${value === 1 ? "" : "s"})`;
}
