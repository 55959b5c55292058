import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigurationError, configureLogging, type StepOptions, step, workflow } from "tsworkflow";
import { type EventStore, MemorySlotStore } from "tsworkflow/engine";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

/** Copies of the limited steps running at once, per limit key, counted in the step functions. */
const running = new Map<string, number>();
const highest = new Map<string, number>();
const order: string[] = [];
function enter(key: string): void {
  const now = (running.get(key) ?? 0) + 1;
  running.set(key, now);
  highest.set(key, Math.max(highest.get(key) ?? 0, now));
}
const leave = (key: string) => running.set(key, (running.get(key) ?? 0) - 1);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const callApi = step(
  "sc_call_api",
  async (tenant: string, item: number) => {
    enter(`tenant:${tenant}`);
    enter("global");
    try {
      await pause(2 + (item % 3));
      return `${tenant}-${item}`;
    } finally {
      leave(`tenant:${tenant}`);
      leave("global");
    }
  },
  { concurrency: { limit: 2, key: (tenant) => tenant } },
);

const exclusive = step(
  "sc_exclusive",
  async (label: string) => {
    enter("exclusive");
    order.push(label);
    try {
      await pause(3);
      return label;
    } finally {
      leave("exclusive");
    }
  },
  { concurrency: { limit: 1 } },
);

/** Holds its slot until the test opens the gate. */
let openGate: () => void = () => {};
const gated = step(
  "sc_gated",
  async (label: string) => {
    order.push(label);
    if (label === "first") await new Promise<void>((resolve) => (openGate = resolve));
    return label;
  },
  { concurrency: { limit: 1 } },
);
const gatedRun = workflow("sc_gated_run", async (label: string) => gated(label));

const fanOut = workflow("sc_fan_out", async (tenant: string) =>
  Promise.all([0, 1, 2, 3, 4].map((item) => callApi(tenant, item))),
);
const single = workflow("sc_single", async (label: string) => exclusive(label));

describe("step concurrency on the embedded runtime", () => {
  for (const backend of ["memory", "file"] as const) {
    it(`never runs more than the limit of a step per key at once across runs on the ${backend} backend, and leaves no slot behind`, async () => {
      running.clear();
      highest.clear();
      const dir = mkdtempSync(join(tmpdir(), "tsw-step-concurrency-"));
      const storage: EventStore = backend === "memory" ? new MemoryStorage() : new FileStorage({ dir });
      const slots = new MemorySlotStore();
      const runtime = new LocalRuntime({ storage, slots, recover: false });
      try {
        const tenants = ["acme", "globex", "initech"];
        const started = await Promise.all(
          [...tenants, ...tenants].map((tenant) => runtime.start(fanOut, [tenant])),
        );
        const runs = await Promise.all(
          started.map(({ runId }) => runtime.waitForRun(runId, { timeoutMs: 60_000 })),
        );
        expect(runs.map((run) => run.status)).toEqual(Array(6).fill("completed"));
        for (const tenant of tenants) expect(highest.get(`tenant:${tenant}`)).toBe(2);
        // Three tenants at 2 each: the limits are per key, not one for the step.
        expect(highest.get("global")).toBeGreaterThan(2);
        for (const tenant of tenants)
          expect(await slots.inspect(`step:sc_call_api:${tenant}`, Date.now())).toEqual({
            holding: [],
            waiting: [],
          });
        // Waiting for a slot used up no attempt.
        for (const { runId } of started) {
          const events = await storage.getEvents(runId);
          expect(events.filter((event) => event.type === "step_retrying")).toEqual([]);
        }
      } finally {
        await runtime.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("runs the attempts of a step with limit 1 one at a time, in the order they asked", async () => {
    running.clear();
    highest.clear();
    order.length = 0;
    const runtime = new LocalRuntime({ storage: new MemoryStorage(), recover: false });
    try {
      const labels = Array.from({ length: 8 }, (_, index) => `run-${index}`);
      const started = [];
      for (const label of labels) started.push(await runtime.start(single, [label]));
      for (const { runId } of started) await runtime.waitForRun(runId, { timeoutMs: 60_000 });
      expect(highest.get("exclusive")).toBe(1);
      expect(order).toEqual(labels);
    } finally {
      await runtime.close();
    }
  });

  it("never runs the waiting step of a run cancelled while it waited, and lets the next one in", async () => {
    order.length = 0;
    const slots = new MemorySlotStore();
    const runtime = new LocalRuntime({ storage: new MemoryStorage(), slots, recover: false });
    try {
      const first = await runtime.start(gatedRun, ["first"]);
      for (let i = 0; i < 400 && order.length === 0; i += 1) await pause(10);
      const cancelled = await runtime.start(gatedRun, ["cancelled"]);
      const third = await runtime.start(gatedRun, ["third"]);
      for (let i = 0; i < 400; i += 1) {
        if ((await slots.inspect("step:sc_gated:", Date.now())).waiting.length === 2) break;
        await pause(10);
      }
      expect((await slots.inspect("step:sc_gated:", Date.now())).waiting).toHaveLength(2);
      await runtime.cancelRun(cancelled.runId, "not needed");
      expect((await runtime.waitForRun(cancelled.runId, { timeoutMs: 30_000 })).status).toBe("cancelled");
      openGate();
      expect((await runtime.waitForRun(first.runId, { timeoutMs: 30_000 })).status).toBe("completed");
      expect((await runtime.waitForRun(third.runId, { timeoutMs: 30_000 })).status).toBe("completed");
      expect(order).toEqual(["first", "third"]);
      expect(await slots.inspect("step:sc_gated:", Date.now())).toEqual({ holding: [], waiting: [] });
    } finally {
      await runtime.close();
    }
  });

  it("rejects a concurrency limit that is not a positive integer with a ConfigurationError", () => {
    expect(() => step("sc_bad", async () => 1, { concurrency: { limit: 0 } })).toThrow(ConfigurationError);
    expect(() => step("sc_bad_key", async () => 1, { concurrency: { limit: 1, key: "x" as never } })).toThrow(
      ConfigurationError,
    );
  });
});

/** Counts the calls of the step functions whose limit keys fail: none may run. */
let keyFailureCalls = 0;
const keyed = (name: string, options: StepOptions<[string]>) =>
  step(
    name,
    async (tenant: string) => {
      keyFailureCalls += 1;
      return tenant;
    },
    options,
  );
const throwing = (message: string) => () => {
  throw new Error(message);
};
const keyThrows = keyed("sc_key_throws", {
  concurrency: { limit: 1, key: throwing("boom in key") },
  maxRetries: 2,
  retryDelay: 1,
});
const rateKeyThrows = keyed("sc_rate_key_throws", {
  rateLimit: { limit: 5, period: "1s", key: throwing("boom in rate key") },
});
const numberKey = keyed("sc_number_key", { concurrency: { limit: 1, key: () => 42 as unknown as string } });
const catching = (limited: (tenant: string) => Promise<string>) => async (tenant: string) => {
  try {
    return await limited(tenant);
  } catch (error) {
    const { name, code, message } = error as Error & { code?: string };
    return `caught ${name} ${code}: ${message}`;
  }
};

describe("limit key functions that fail", () => {
  for (const [label, limited, expected] of [
    [
      "a concurrency key function that throws",
      keyThrows,
      'caught ConfigurationError CONFIGURATION: step("sc_key_throws"): concurrency.key must return a string, but it threw Error: boom in key.',
    ],
    [
      "a rate limit key function that throws",
      rateKeyThrows,
      'caught ConfigurationError CONFIGURATION: step("sc_rate_key_throws"): rateLimit.key must return a string, but it threw Error: boom in rate key.',
    ],
    [
      "a key function that returns a number",
      numberKey,
      'caught ConfigurationError CONFIGURATION: step("sc_number_key"): concurrency.key must return a string, got 42.',
    ],
  ] as const) {
    it(`fails the attempt of a step with ${label} with a ConfigurationError that the workflow catches, running nothing`, async () => {
      keyFailureCalls = 0;
      const runtime = new LocalRuntime({ storage: new MemoryStorage(), recover: false });
      try {
        const run = workflow(`sc_catch_${limited.stepName}`, catching(limited));
        const { runId } = await runtime.start(run, ["acme"]);
        const done = await runtime.waitForRun(runId, { timeoutMs: 30_000 });
        expect(done.status).toBe("completed");
        expect(done.result).toBe(expected);
        // A key function gets the same arguments at every attempt: the failure is not retried.
        const events = await runtime.getEvents(runId);
        expect(events.map((event) => event.type)).toEqual([
          "workflow_started",
          "step_started",
          "step_failed",
          "workflow_completed",
        ]);
        expect(keyFailureCalls).toBe(0);
      } finally {
        await runtime.close();
      }
    });
  }
});
