import { ConfigurationError, describe } from "./errors.ts";
import { booleanOption, checkOptionNames, integerOption } from "./options.ts";

/** Options of {@link map}. */
export interface MapOptions {
  /**
   * The most callbacks in flight at once: item `i + concurrency` starts when one of the first ones settles.
   * @default 10
   */
  concurrency?: number;
  /**
   * `true`: wait for every item and return `{ ok, value | error }` per item instead of throwing at the
   * first failure.
   * @default false
   */
  settle?: boolean;
}

/** One item's outcome in `map(items, fn, { settle: true })`. */
export type MapSettled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** The default of {@link MapOptions.concurrency}. */
export const DEFAULT_MAP_CONCURRENCY = 10;

/**
 * Bounded fan-out: calls `fn(item, index)` for every item with at most `concurrency` calls in flight,
 * and returns the results in item order. Inside a workflow the callback may call steps, sleeps, child
 * runs and waits; a replay starts the callbacks in the same order (items start in index order, each
 * when an earlier one settles, and settlements follow the run's log), so it is deterministic.
 *
 * When an item fails, no new item starts; the items already in flight settle, then `map` throws the
 * first failure. With `{ settle: true }` every item runs and each one's result or error is returned.
 *
 * Every step of every item is in the run's one log (a step takes 2 events, more with retries), and a
 * run holds at most `maxEventsPerRun` (50,000 by default) events. For 10,000 items or more, map over
 * chunks with `runChild`, so that each chunk has a log of its own (see the README, "Bounded fan-out").
 * @example
 * import { map, step, workflow } from "tsworkflow";
 * const sendEmail = step("send_email", async (to: string) => mailer.send(to));
 * export const newsletter = workflow("newsletter", async (users: string[]) =>
 *   map(users, (user) => sendEmail(user), { concurrency: 50 }));
 * @throws ConfigurationError for an unknown option, a `concurrency` that is not an integer >= 1, a `settle` that is
 *   not a boolean, or `items` that is not an array
 */
export function map<T, R>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<R> | R,
  options: MapOptions & { settle: true },
): Promise<MapSettled<Awaited<R>>[]>;
export function map<T, R>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<R> | R,
  options?: MapOptions & { settle?: false },
): Promise<Awaited<R>[]>;
export function map<T, R>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<R> | R,
  options: MapOptions = {},
): Promise<Awaited<R>[] | MapSettled<Awaited<R>>[]> {
  checkOptionNames("map()", options, ["concurrency", "settle"]);
  integerOption("map()", "concurrency", options.concurrency, 1);
  booleanOption("map()", "settle", options.settle);
  const concurrency = options.concurrency ?? DEFAULT_MAP_CONCURRENCY;
  if (!Array.isArray(items))
    throw new ConfigurationError(`map(): items must be an array, got ${describe(items)}.`);
  if (typeof fn !== "function") throw new ConfigurationError("map() needs a function.");
  const settle = options.settle === true;
  const outcomes: MapSettled<Awaited<R>>[] = new Array(items.length);
  return new Promise((resolve, reject) => {
    let next = 0;
    let inFlight = 0;
    let failure: { error: unknown } | undefined;
    const finish = () => {
      if (failure) reject(failure.error);
      else if (settle) resolve(outcomes);
      else resolve(outcomes.map((outcome) => (outcome as { value: Awaited<R> }).value));
    };
    const launch = () => {
      while (inFlight < concurrency && next < items.length && !failure) {
        const index = next++;
        inFlight += 1;
        Promise.resolve()
          .then(() => fn(items[index] as T, index))
          .then(
            (value) => {
              outcomes[index] = { ok: true, value: value as Awaited<R> };
            },
            (error: unknown) => {
              outcomes[index] = { ok: false, error };
              if (!settle) failure ??= { error };
            },
          )
          .then(() => {
            inFlight -= 1;
            launch();
            if (inFlight === 0 && (next === items.length || failure)) finish();
          });
      }
    };
    if (items.length === 0) resolve([]);
    else launch();
  });
}
