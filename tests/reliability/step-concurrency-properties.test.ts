/**
 * Step concurrency under the chaos driver: random fan-outs of a limited step, with lost, duplicated and
 * reordered deliveries, process restarts, stale workers and several deliveries at once. The step
 * functions count their own copies: the limit is never exceeded, the run completes, no slot is left.
 */
import fc from "fast-check";
import { configureLogging, step, workflow } from "tsworkflow";
import { MemorySlotStore } from "tsworkflow/engine";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_FAULTS, runWithFaults } from "./support/chaos.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

const copies = { now: new Map<string, number>(), highest: new Map<string, number>() };

const limitedStep = step(
  "prop_limited",
  async (key: string, item: number) => {
    const now = (copies.now.get(key) ?? 0) + 1;
    copies.now.set(key, now);
    copies.highest.set(key, Math.max(copies.highest.get(key) ?? 0, now));
    try {
      // Yield a few times, so that copies delivered at once overlap.
      for (let turn = 0; turn < 3; turn += 1) await new Promise((resolve) => setImmediate(resolve));
      return item;
    } finally {
      copies.now.set(key, (copies.now.get(key) ?? 0) - 1);
    }
  },
  { concurrency: { limit: 2, key: (key) => key } },
);

const fanOut = workflow("prop_limited_fan_out", async (keys: string[]) =>
  Promise.all(keys.map((key, item) => limitedStep(key, item))),
);

describe("step concurrency under faults (property)", () => {
  it("never runs more than the limit per key, completes every run and leaves no slot behind", async () => {
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
    const keys = fc.array(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(keys, faults, fc.integer(), async (items, chaos, seed) => {
        copies.now.clear();
        copies.highest.clear();
        const slots = new MemorySlotStore();
        const report = await runWithFaults(fanOut, [items], { ...NO_FAULTS, ...chaos }, seed, { slots });
        expect(report.run.status).toBe("completed");
        expect(report.run.result).toEqual(items.map((_, item) => item));
        for (const highest of copies.highest.values()) expect(highest).toBeLessThanOrEqual(2);
        for (const key of new Set(items))
          expect((await slots.inspect(`step:prop_limited:${key}`, 0)).holding).toEqual([]);
      }),
      { numRuns: Number(process.env.TSW_PROPERTY_RUNS ?? 80) },
    );
  }, 120_000);
});
