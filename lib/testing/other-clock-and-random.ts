import { AsyncLocalStorage } from "node:async_hooks";

/*
 * A replay in the same millisecond as the run would read the same Date.now(), and a coin flip on
 * Math.random() lands on the same side half the time: replaying with the real clock and random numbers
 * would catch such code only by chance. The replay check replays with other ones instead, in two passes,
 * so that any value taken from them changes, and any branch on them that can go both ways does in one pass.
 * A time measured between two reads (`Date.now() - start`) does not change with the shift, and takes the
 * replay a few milliseconds as it took the run in a test: so in the second pass the clock also moves on at
 * each read.
 */

/** What `Date.now()`, `new Date()` and `Math.random()` give the code replayed in one pass. */
export interface OtherValues {
  /** Added to the real time. */
  clockShiftMs: number;
  /** How much further each read of the clock is than the one before (besides the real time between them). */
  clockStepMs: number;
  /** What every `Math.random()` returns. */
  random: number;
}

/** About a year and a half day, 30 minutes and 30.5 seconds: another date, hour, minute and second. */
const SHIFT_MS = (366 * 24 + 12) * 3_600_000 + 1_830_500;

/**
 * The passes: the lowest random number and an earlier clock, then the highest one and a later clock that
 * moves on by as much at each read.
 */
export const REPLAY_PASSES: readonly OtherValues[] = [
  { clockShiftMs: -SHIFT_MS, clockStepMs: 0, random: 0 },
  { clockShiftMs: SHIFT_MS, clockStepMs: SHIFT_MS, random: 1 - 2 ** -53 },
];

/** The values of the code at hand, whether it read any of them, and how often it read the clock. */
const current = new AsyncLocalStorage<{ values: OtherValues; read: boolean; clockReads: number }>();
let installed = 0;
let realDate: DateConstructor = Date;
let realRandom: () => number = Math.random;

/**
 * Runs `work` with `Date` and `Math.random` giving `values` to the code it runs (its async continuations
 * included) and the real ones to all other code of the process, which may run meanwhile.
 * @returns what `work` resolved with, and whether its code read the clock or a random number (when it did
 *   not, other values would change nothing)
 */
export async function withOtherClockAndRandom<T>(
  values: OtherValues,
  work: () => Promise<T>,
): Promise<{ value: T; read: boolean }> {
  if (installed === 0) install();
  installed += 1;
  const context = { values, read: false, clockReads: 0 };
  try {
    const value = await current.run(context, work);
    return { value, read: context.read };
  } finally {
    installed -= 1;
    if (installed === 0) uninstall();
  }
}

function install(): void {
  realDate = globalThis.Date;
  realRandom = Math.random;
  const Real = realDate;
  /** The context of the code at hand, noting that it read a value; undefined for the rest of the process. */
  const other = () => {
    const context = current.getStore();
    if (context) context.read = true;
    return context;
  };
  const now = (): number => {
    const context = other();
    if (!context) return Real.now();
    const { clockShiftMs, clockStepMs } = context.values;
    const time = Real.now() + clockShiftMs + context.clockReads * clockStepMs;
    context.clockReads += 1;
    return time;
  };
  // A function, not a class: `Date()` called without `new` must keep working for the rest of the process.
  function OtherDate(this: unknown, ...args: unknown[]): unknown {
    if (!new.target) return new Real(now()).toString(); // what Date() gives
    return Reflect.construct(Real, args.length === 0 ? [now()] : args, new.target);
  }
  Object.setPrototypeOf(OtherDate, Real); // Date.parse, Date.UTC
  OtherDate.prototype = Real.prototype; // `instanceof Date` holds both ways
  OtherDate.now = now;
  Object.defineProperty(OtherDate, "name", { value: "Date" });
  globalThis.Date = OtherDate as unknown as DateConstructor;
  const random = realRandom;
  Math.random = () => other()?.values.random ?? random();
}

function uninstall(): void {
  globalThis.Date = realDate;
  Math.random = realRandom;
}
