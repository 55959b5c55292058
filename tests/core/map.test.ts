import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  ConfigurationError,
  configureLogging,
  FatalError,
  type MapSettled,
  map,
  runChild,
  sleep,
  step,
  type WorkflowEvent,
  workflow,
} from "tsworkflow";
import type { EventStore } from "tsworkflow/engine";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_FAULTS, runWithFaults } from "../reliability/support/chaos.ts";
import { manualEngine } from "./support/manual-engine.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

/** Counts the copies of the item step that run at the same time, in this process. */
const copies = { now: 0, highest: 0, executions: 0 };
const resetCopies = () => Object.assign(copies, { now: 0, highest: 0, executions: 0 });

const work = step(
  "map_work",
  async (item: number, fails: boolean) => {
    copies.now += 1;
    copies.executions += 1;
    copies.highest = Math.max(copies.highest, copies.now);
    try {
      // Items take different times, so they finish out of order.
      await new Promise((resolve) => setTimeout(resolve, (item * 7) % 5));
      if (fails) throw new FatalError(`item ${item} failed`);
      return item * 10;
    } finally {
      copies.now -= 1;
    }
  },
  { maxRetries: 0 },
);

interface Plan {
  items: number;
  concurrency: number;
  failing: number[];
  settle: boolean;
}

const mapWorkflow = workflow("map_workflow", async (plan: Plan) => {
  const items = Array.from({ length: plan.items }, (_, index) => index);
  const each = (item: number) => work(item, plan.failing.includes(item));
  if (plan.settle) {
    const outcomes = await map(items, each, { concurrency: plan.concurrency, settle: true });
    return outcomes.map((outcome: MapSettled<number>) =>
      outcome.ok ? outcome.value : (outcome.error as Error).message,
    );
  }
  return map(items, each, { concurrency: plan.concurrency });
});

/** A callback with a sleep between two steps: waits of several kinds interleave across items. */
const sleepy = workflow("map_sleepy", async (count: number) =>
  map(
    Array.from({ length: count }, (_, index) => index),
    async (item) => {
      const first = await work(item, false);
      await sleep(`${1 + (item % 3)}s`);
      return first + (await work(item + 1, false));
    },
    { concurrency: 3 },
  ),
);

const triple = step("map_triple", (item: number) => item * 3);
const chunk = workflow("map_chunk", async (items: number[]) =>
  map(items, (item) => triple(item), { concurrency: 50 }),
);
const chunked = workflow("map_chunked", async (items: number[]) => {
  const chunks = Array.from({ length: Math.ceil(items.length / 1000) }, (_, i) =>
    items.slice(i * 1000, (i + 1) * 1000),
  );
  return (await map(chunks, (part) => runChild(chunk, [part]), { concurrency: 5 })).flat();
});

/** The most items in flight at any point of the log: started (first step) and not yet settled. */
function highestInFlight(events: readonly WorkflowEvent[]): number {
  let now = 0;
  let highest = 0;
  for (const event of events) {
    if (event.type === "step_started" && event.attempt === 1) now += 1;
    if (event.type === "step_completed" || event.type === "step_failed") now -= 1;
    highest = Math.max(highest, now);
  }
  return highest;
}

function expected(plan: Plan): unknown {
  if (plan.settle)
    return Array.from({ length: plan.items }, (_, item) =>
      plan.failing.includes(item) ? `item ${item} failed` : item * 10,
    );
  return plan.failing.every((item) => item >= plan.items)
    ? Array.from({ length: plan.items }, (_, item) => item * 10)
    : undefined;
}

describe("map() outside a workflow", () => {
  it("returns the results in item order with at most `concurrency` callbacks at once", async () => {
    let now = 0;
    let highest = 0;
    const results = await map(
      [5, 1, 4, 2, 3],
      async (delay, index) => {
        now += 1;
        highest = Math.max(highest, now);
        await new Promise((resolve) => setTimeout(resolve, delay));
        now -= 1;
        return `${index}:${delay}`;
      },
      { concurrency: 2 },
    );
    expect(results).toEqual(["0:5", "1:1", "2:4", "3:2", "4:3"]);
    expect(highest).toBe(2);
  });

  it("throws the first failure only after the items in flight have settled, and starts no new item", async () => {
    const settledItems: number[] = [];
    const started: number[] = [];
    const outcome = map(
      [0, 1, 2, 3, 4, 5],
      async (item) => {
        started.push(item);
        if (item === 0) throw new Error("item 0 failed");
        await new Promise((resolve) => setTimeout(resolve, 5));
        settledItems.push(item);
        return item;
      },
      { concurrency: 3 },
    );
    await expect(outcome).rejects.toThrow("item 0 failed");
    expect(started).toEqual([0, 1, 2]);
    expect(settledItems.sort()).toEqual([1, 2]);
  });

  it("returns each item's result or error with { settle: true }", async () => {
    const outcomes = await map(
      ["a", "b", "c"],
      (letter) => {
        if (letter === "b") throw new Error("no b");
        return letter.toUpperCase();
      },
      { concurrency: 1, settle: true },
    );
    expect(outcomes).toEqual([
      { ok: true, value: "A" },
      { ok: false, error: new Error("no b") },
      { ok: true, value: "C" },
    ]);
  });

  it("returns an empty array for no items", async () => {
    expect(await map([], () => 1)).toEqual([]);
  });

  it("rejects a concurrency that is not a positive integer with a ConfigurationError", () => {
    for (const concurrency of [0, -1, 1.5, Number.NaN]) {
      expect(() => map([1], () => 1, { concurrency })).toThrow(ConfigurationError);
    }
    expect(() => map("abc" as never, () => 1)).toThrow(ConfigurationError);
  });

  it("refuses a misspelt option and a settle that is not a boolean, naming the option", () => {
    expect(() => map([1], () => 1, { concurency: 3 } as never)).toThrow(
      'map(): unknown option "concurency". The options are concurrency, settle.',
    );
    expect(() => map([1], () => 1, { settle: "yes" } as never)).toThrow(
      'map(): settle must be true or false, got "yes".',
    );
    expect(() => map([1], () => 1, { concurrency: 0 })).toThrow(
      "map(): concurrency must be an integer >= 1, got 0.",
    );
  });
});

describe("map() in a workflow", () => {
  async function runOn(storage: EventStore, plan: Plan) {
    resetCopies();
    const runtime = new LocalRuntime({ storage, concurrency: 32, recover: false });
    try {
      const { runId } = await runtime.start(mapWorkflow, [plan]);
      const run = await runtime.waitForRun(runId, { timeoutMs: 30_000 });
      return { run, events: await storage.getEvents(runId) };
    } finally {
      await runtime.close();
    }
  }

  for (const backend of ["memory", "file"] as const) {
    it(`never runs more than \`concurrency\` item steps at once on the ${backend} backend, and returns results in item order`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "tsw-map-"));
      try {
        const storage = backend === "memory" ? new MemoryStorage() : new FileStorage({ dir });
        const plan = { items: 40, concurrency: 6, failing: [], settle: false };
        const { run, events } = await runOn(storage, plan);
        expect(run).toMatchObject({ status: "completed", result: expected(plan) });
        expect(copies.executions).toBe(40);
        expect(copies.highest).toBeLessThanOrEqual(6);
        expect(highestInFlight(events)).toBeLessThanOrEqual(6);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("fails the run with the first failure once the items in flight settled, starting no item after it", async () => {
    const plan = { items: 20, concurrency: 4, failing: [2], settle: false };
    const { run, events } = await runOn(new MemoryStorage(), plan);
    expect(run.status).toBe("failed");
    expect(run.error?.message).toBe("item 2 failed");
    const failedAt = events.findIndex((event) => event.type === "step_failed");
    const startedAfter = events
      .slice(failedAt)
      .filter((event) => event.type === "step_started" && event.attempt === 1);
    expect(startedAfter).toEqual([]);
    // Every step that was started got its result before the run failed.
    const started = events.filter((event) => event.type === "step_started").length;
    const ended = events.filter((event) => event.type === "step_completed" || event.type === "step_failed");
    expect(ended.length).toBe(started);
  });

  it("replays a finished map from its log without running a step again or diverging", async () => {
    const m = manualEngine({ cacheSize: 0 });
    const { runId } = await m.engine.start(sleepy, [7]);
    await m.runToEnd();
    const run = await m.run(runId);
    expect(run.status).toBe("completed");
    expect(run.result).toEqual(Array.from({ length: 7 }, (_, item) => item * 10 + (item + 1) * 10));
    expect(highestInFlight(await m.events(runId))).toBeLessThanOrEqual(3 * 2);
  });

  it("runs 10,000 items in chunks of child runs, each log far under the event caps", async () => {
    const storage = new MemoryStorage();
    const runtime = new LocalRuntime({ storage, recover: false });
    try {
      const items = Array.from({ length: 10_000 }, (_, item) => item);
      const { runId } = await runtime.start(chunked, [items]);
      const run = await runtime.waitForRun(runId, { timeoutMs: 120_000 });
      expect(run.status).toBe("completed");
      expect(run.result).toEqual(items.map((item) => item * 3));
      const { runs } = await storage.listRuns({ workflowName: "map_chunk", limit: 100 });
      expect(runs).toHaveLength(10);
      for (const id of [runId, ...runs.map((child) => child.runId)])
        expect((await storage.getEvents(id)).length).toBeLessThan(2_100);
    } finally {
      await runtime.close();
    }
  }, 150_000);

  it("keeps the limit, the item order and every result under crashes, duplicate and reordered deliveries and stale workers (property)", async () => {
    const plans = fc.record({
      // Duplicated deliveries multiply with the steps of a run (15 steps two at a time, duplicates at 0.2 and
      // no cache take some 19,000 deliveries, map or not), so runs stay small here.
      items: fc.integer({ min: 0, max: 12 }),
      concurrency: fc.integer({ min: 1, max: 8 }),
      failing: fc.uniqueArray(fc.integer({ min: 0, max: 12 }), { maxLength: 3 }),
      settle: fc.boolean(),
    });
    const faults = fc.record({
      drop: fc.constantFrom(0, 0.05),
      duplicate: fc.constantFrom(0, 0.2),
      reorder: fc.boolean(),
      restart: fc.constantFrom(0, 0.05),
      forget: fc.constantFrom(0, 0.2),
      workers: fc.integer({ min: 1, max: 2 }),
      parallel: fc.integer({ min: 1, max: 3 }),
      cacheSize: fc.constantFrom(0, 100),
    });
    await fc.assert(
      fc.asyncProperty(plans, faults, fc.integer(), async (plan, chaos, seed) => {
        const report = await runWithFaults(mapWorkflow, [plan], { ...NO_FAULTS, ...chaos }, seed);
        const failed = !plan.settle && plan.failing.some((item) => item < plan.items);
        expect(report.run.status).toBe(failed ? "failed" : "completed");
        expect(report.run.result).toEqual(failed ? undefined : expected(plan));
        // Which failing item fails first follows the order of deliveries; it is one of them.
        if (failed)
          expect(plan.failing.map((item) => `item ${item} failed`)).toContain(report.run.error?.message);
        expect(highestInFlight(report.events)).toBeLessThanOrEqual(plan.concurrency);
        const results = report.events.filter((event) => event.type === "step_completed").length;
        if (!failed)
          expect(results).toBe(plan.items - plan.failing.filter((item) => item < plan.items).length);
      }),
      { numRuns: Number(process.env.TSW_PROPERTY_RUNS ?? 60) },
    );
  }, 120_000);
});
