/**
 * Run concurrency and run rate limits under the chaos driver: a parent starts random child runs of a
 * limited workflow, with lost, duplicated and reordered deliveries, process restarts, stale workers and
 * several deliveries at once. The children count themselves: the limit is never exceeded, every run
 * completes, no run jumps the line, no slot is left, and the starts never exceed the rate limit on the
 * driver's virtual clock.
 */
import fc from "fast-check";
import { Redis } from "ioredis";
import { configureLogging, runChild, sleep, step, workflow } from "tsworkflow";
import {
  MemoryRateLimitStore,
  MemorySlotStore,
  type RateLimitStore,
  type SlotStore,
} from "tsworkflow/engine";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisRateLimitStore } from "../../lib/adapters/redis/redis-rate-limit-store.ts";
import { RedisSlotStore } from "../../lib/adapters/redis/redis-slot-store.ts";
import { type RedisServer, startRedisServer } from "../redis/redis-server.ts";
import { mostInAWindow } from "../support/windows.ts";
import { NO_FAULTS, runWithFaults } from "./support/chaos.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

const LIMIT = 2;
const PERIOD_MS = 60_000;

/** Runs active at once per key, from the runs' first and last steps (a Set: a step may run twice). */
const active = new Map<string, Set<string>>();
const highest = new Map<string, number>();

const mark = step("prop_run_mark", async (kind: string, key: string, label: string) => {
  const set = active.get(key) ?? new Set<string>();
  active.set(key, set);
  if (kind === "begin") set.add(label);
  else set.delete(label);
  highest.set(key, Math.max(highest.get(key) ?? 0, set.size));
});

const limitedChild = workflow(
  "prop_run_limited",
  async (key: string, label: string) => {
    await mark("begin", key, label);
    await sleep("1s");
    await mark("end", key, label);
    return label;
  },
  { concurrency: { limit: LIMIT, key: (key) => key } },
);

const ratedChild = workflow("prop_run_rated", async (label: string) => label, {
  rateLimit: { limit: LIMIT, period: PERIOD_MS },
});

const parent = workflow("prop_run_limits_parent", async (keys: string[], rated: number) =>
  Promise.all([
    ...keys.map((key, index) => runChild(limitedChild, [key, `${key}-${index}`])),
    ...Array.from({ length: rated }, (_, index) => runChild(ratedChild, [`rated-${index}`])),
  ]),
);

/**
 * Slots that note, per run key, the order runs joined the line and, for each run, how many slots of its
 * key had been given back when it got its own: runs let in by the same releases may go in any order, but a
 * run that joined later never gets in at a later release than one that joined before it.
 */
class RecordingSlots implements SlotStore {
  readonly joined = new Map<string, string[]>();
  readonly grantedAfter = new Map<string, number>();
  private readonly releases = new Map<string, number>();
  constructor(private readonly inner: SlotStore) {}
  async acquire(request: Parameters<SlotStore["acquire"]>[0]) {
    const answer = await this.inner.acquire(request);
    if (request.key.startsWith("run:")) {
      note(this.joined, request.key, request.holder);
      if (answer === "granted" && !this.grantedAfter.has(request.holder))
        this.grantedAfter.set(request.holder, this.releases.get(request.key) ?? 0);
    }
    return answer;
  }
  async release(key: string, holder: string, token: string) {
    const held = (await this.inner.inspect(key, T0)).holding.includes(holder);
    await this.inner.release(key, holder, token);
    if (held) this.releases.set(key, (this.releases.get(key) ?? 0) + 1);
  }
  inspect(key: string, now: number) {
    return this.inner.inspect(key, now);
  }
}

/** Rates that note when each run got its start, on the caller's (virtual) clock. */
class RecordingRates implements RateLimitStore {
  readonly starts = new Map<string, number>();
  constructor(private readonly inner: RateLimitStore) {}
  async take(request: Parameters<RateLimitStore["take"]>[0]) {
    const answer = await this.inner.take(request);
    if (answer.granted && !this.starts.has(request.holder)) this.starts.set(request.holder, request.now);
    return answer;
  }
  started(key: string, holder: string, at: number) {
    return this.inner.started(key, holder, at);
  }
  leave(key: string, holder: string) {
    return this.inner.leave(key, holder);
  }
  inspect(key: string, periodMs: number, now: number) {
    return this.inner.inspect(key, periodMs, now);
  }
}

function note(map: Map<string, string[]>, key: string, holder: string): void {
  const list = map.get(key) ?? [];
  map.set(key, list);
  if (!list.includes(holder)) list.push(holder);
}

/** Before the driver's clock (leases are counted from it), so that every lease still runs. */
const T0 = 0;

let server: RedisServer | undefined;
let redis: Redis | undefined;
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis(server.url);
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

const backends = {
  memory: { stores: () => ({ slots: new MemorySlotStore(), rates: new MemoryRateLimitStore() }), runs: 60 },
  // The same stores every worker of a Redis deployment shares, on a real redis-server.
  redis: {
    stores: () => {
      const prefix = `tsw-prop-${++prefixes}:`;
      const client = redis as Redis;
      return { slots: new RedisSlotStore(client, prefix), rates: new RedisRateLimitStore(client, prefix) };
    },
    runs: 25,
  },
};

describe.each(Object.keys(backends) as (keyof typeof backends)[])(
  "run concurrency and rate limits under faults on %s slots (property)",
  (backend) => {
    it("never lets more than the limit of runs per key be active, lets them in first come first served, starts them within the rate, completes every run and leaves no slot", async () => {
      const faults = fc.record({
        drop: fc.constantFrom(0, 0.05),
        duplicate: fc.constantFrom(0, 0.2),
        reorder: fc.boolean(),
        restart: fc.constantFrom(0, 0.05),
        forget: fc.constantFrom(0, 0.2),
        workers: fc.integer({ min: 1, max: 2 }),
        parallel: fc.integer({ min: 1, max: 6 }),
        cacheSize: fc.constantFrom(0, 100),
      });
      const keys = fc.array(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 8 });
      await fc.assert(
        fc.asyncProperty(
          keys,
          fc.integer({ min: 0, max: 5 }),
          faults,
          fc.integer(),
          async (items, rated, chaos, seed) => {
            // Prepare
            active.clear();
            highest.clear();
            const stores = backends[backend].stores();
            const slots = new RecordingSlots(stores.slots);
            const rates = new RecordingRates(stores.rates);
            // Act
            const report = await runWithFaults(parent, [items, rated], { ...NO_FAULTS, ...chaos }, seed, {
              slots,
              rates,
            });
            // Assess
            expect(report.run.status).toBe("completed");
            expect(report.run.result).toEqual([
              ...items.map((key, index) => `${key}-${index}`),
              ...Array.from({ length: rated }, (_, index) => `rated-${index}`),
            ]);
            for (const most of highest.values()) expect(most).toBeLessThanOrEqual(LIMIT);
            for (const key of new Set(items)) {
              const slotKey = `run:prop_run_limited:${key}`;
              expect(await slots.inspect(slotKey, T0)).toEqual({ holding: [], waiting: [] });
              const releasesSeen = (slots.joined.get(slotKey) ?? []).map(
                (runId) => slots.grantedAfter.get(runId) ?? -1,
              );
              expect(releasesSeen).toEqual([...releasesSeen].sort((a, b) => a - b));
              expect(releasesSeen).not.toContain(-1);
            }
            expect(rates.starts.size).toBe(rated);
            expect(
              mostInAWindow(
                [...rates.starts.values()].sort((a, b) => a - b),
                PERIOD_MS,
              ),
            ).toBeLessThanOrEqual(LIMIT);
          },
        ),
        { numRuns: Number(process.env.TSW_PROPERTY_RUNS ?? backends[backend].runs) },
      );
    }, 180_000);
  },
);
