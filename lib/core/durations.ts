import { InvalidDurationError } from "./errors.ts";

/**
 * A length of time: `"500ms" "5s" "10m" "2h" "3d" "1w"`, an object `{ days, hours, minutes, seconds }`,
 * a number of milliseconds, or a `Date` (an absolute point in time, where a point makes sense).
 */
export type Duration =
  | string
  | number
  | Date
  | {
      weeks?: number;
      days?: number;
      hours?: number;
      minutes?: number;
      seconds?: number;
      milliseconds?: number;
    };

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const OBJECT_UNIT_MS: Record<string, number> = {
  weeks: UNIT_MS.w as number,
  days: UNIT_MS.d as number,
  hours: UNIT_MS.h as number,
  minutes: UNIT_MS.m as number,
  seconds: UNIT_MS.s as number,
  milliseconds: 1,
};

const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;

/**
 * The longest duration tsworkflow accepts: 1,000 years. Far enough for any sleep or timeout, and small
 * enough that every deadline it gives is a valid `Date` (JavaScript dates end in the year 275760).
 */
export const MAX_DURATION_MS = 1000 * 365.25 * 86_400_000;

/** The latest point in time a `Date` deadline may name (the largest time a JavaScript `Date` holds). */
const MAX_DATE_MS = 8.64e15;

const TOO_LONG = `longer than the limit of 1000 years (${MAX_DURATION_MS} ms)`;

/**
 * Milliseconds in a relative duration, at most {@link MAX_DURATION_MS}; or, for a value that is not one, why
 * not in words ("" when there is no more to say than that it is no duration). A `Date` is not one (see
 * {@link resolveDeadline}).
 */
export function measureDuration(duration: Duration): number | string {
  let ms: number;
  if (typeof duration === "number") {
    if (!Number.isFinite(duration) || duration < 0) return "expected a finite number of milliseconds >= 0";
    ms = duration;
  } else if (typeof duration === "string") {
    const match = PATTERN.exec(duration.trim());
    if (!match) return "";
    ms = Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  } else if (duration instanceof Date) {
    return "a Date is a point in time, not a length";
  } else if (duration !== null && typeof duration === "object") {
    const entries = Object.entries(duration);
    if (entries.length === 0) return "the object names no unit";
    ms = 0;
    for (const [unit, amount] of entries) {
      const factor = OBJECT_UNIT_MS[unit];
      if (factor === undefined) return `unknown unit "${unit}"`;
      if (typeof amount !== "number" || !Number.isFinite(amount) || amount < 0)
        return `${unit} must be a finite number >= 0`;
      ms += amount * factor;
    }
  } else {
    return "";
  }
  return ms > MAX_DURATION_MS ? TOO_LONG : Math.round(ms);
}

/**
 * Milliseconds in a relative duration, at most {@link MAX_DURATION_MS}. A `Date` is not accepted here (see
 * {@link resolveDeadline}).
 * @throws InvalidDurationError naming the value
 */
export function toMilliseconds(duration: Duration): number {
  const ms = measureDuration(duration);
  if (typeof ms === "string") throw new InvalidDurationError(duration, ms);
  return ms;
}

/**
 * The absolute time (epoch ms) a duration or `Date` points to, counted from `now`.
 * @throws InvalidDurationError for a bad duration, an invalid `Date`, or a point past what a `Date` holds
 */
export function resolveDeadline(duration: Duration, now: number): number {
  if (duration instanceof Date) {
    const at = duration.getTime();
    if (Number.isNaN(at)) throw new InvalidDurationError(duration, "the Date is invalid");
    return at;
  }
  const at = now + toMilliseconds(duration);
  if (at > MAX_DATE_MS)
    throw new InvalidDurationError(duration, "it ends past the last date JavaScript holds");
  return at;
}

/** "1d 2h 3m 4s 5ms" for humans. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0ms";
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
    ["ms", 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join(" ");
}
