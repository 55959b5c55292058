import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigurationError, configureLogging, sleep, step, waitForEvent, workflow } from "tsworkflow";
import { type EventStore, MemorySlotStore } from "tsworkflow/engine";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

/** Runs active at once per key, counted by the runs' first and last steps (a Set: a step may run twice). */
const active = new Map<string, Set<string>>();
const highest = new Map<string, number>();
const began: string[] = [];
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const begin = step("rc_begin", async (tenant: string, label: string) => {
  const set = active.get(tenant) ?? new Set();
  active.set(tenant, set);
  if (!set.has(label)) began.push(label);
  set.add(label);
  highest.set(tenant, Math.max(highest.get(tenant) ?? 0, set.size));
  // The first two runs of a tenant are let in together: each waits for the other, so that a busy machine,
  // which may finish one before the other begins, cannot hide two runs active at once (up to 10 s).
  const deadline = Date.now() + 10_000;
  while (/-[01]$/.test(label) && (highest.get(tenant) ?? 0) < 2 && Date.now() < deadline) await pause(5);
});
const end = step("rc_end", async (tenant: string, label: string) => {
  active.get(tenant)?.delete(label);
});

/** Two runs per tenant at once; each sleeps in the middle (a sleeping run still holds its slot). */
const perTenant = workflow(
  "rc_per_tenant",
  async (tenant: string, label: string) => {
    await begin(tenant, label);
    await sleep(5 + (label.length % 3));
    await end(tenant, label);
    return label;
  },
  { concurrency: { limit: 2, key: (tenant) => tenant } },
);

/** One run at a time; each waits for its "go" event. */
const oneAtATime = workflow(
  "rc_one_at_a_time",
  async (label: string) => {
    await begin("solo", label);
    await waitForEvent("go");
    await end("solo", label);
    return label;
  },
  { concurrency: { limit: 1 } },
);

/**
 * Runs began in line order: when a run began, fewer than `limit` runs created before it had not begun yet
 * (it held a slot, so they were ahead of it in line: runs let in by the same releases may begin in either
 * order, a run can never pass `limit` runs ahead of it).
 */
function expectLineOrder(began: string[], created: string[], limit: number): void {
  expect([...began].sort()).toEqual([...created].sort());
  began.forEach((label, position) => {
    const ahead = created.slice(0, created.indexOf(label));
    const notYet = ahead.filter((earlier) => !began.slice(0, position).includes(earlier));
    expect(notYet.length, `${label} began with ${notYet.join(", ")} still waiting`).toBeLessThan(limit);
  });
}

function reset(): void {
  active.clear();
  highest.clear();
  began.length = 0;
}

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await pause(10);
  }
}

describe("run concurrency on the embedded runtime", () => {
  for (const backend of ["memory", "file"] as const) {
    it(`keeps at most the limit of runs per key active on the ${backend} backend, starts them in creation order and leaves no slot behind`, async () => {
      // Prepare
      reset();
      const dir = mkdtempSync(join(tmpdir(), "tsw-run-concurrency-"));
      const storage: EventStore = backend === "memory" ? new MemoryStorage() : new FileStorage({ dir });
      const slots = new MemorySlotStore();
      const runtime = new LocalRuntime({ storage, slots, recover: false });
      try {
        const tenants = ["acme", "globex", "initech"];
        const labels = tenants.flatMap((tenant) =>
          [0, 1, 2, 3, 4].map((index) => [tenant, `${tenant}-${index}`]),
        );
        // Act
        const started = [];
        for (const [tenant, label] of labels) started.push(await runtime.start(perTenant, [tenant, label]));
        const runs = await Promise.all(
          started.map(({ runId }) => runtime.waitForRun(runId, { timeoutMs: 60_000 })),
        );
        // Assess
        expect(runs.map((run) => run.status)).toEqual(Array(labels.length).fill("completed"));
        for (const tenant of tenants) {
          expect(highest.get(tenant)).toBe(2);
          expectLineOrder(
            began.filter((label) => label.startsWith(tenant)),
            [0, 1, 2, 3, 4].map((index) => `${tenant}-${index}`),
            2,
          );
          // A run gives its slot back after the commit that ends it: wait for the last release.
          const key = `run:rc_per_tenant:${tenant}`;
          await until(
            async () => (await slots.inspect(key, Date.now())).holding.length === 0,
            `the slots of ${key} to be given back`,
          );
          expect(await slots.inspect(key, Date.now())).toEqual({ holding: [], waiting: [] });
        }
        const [first] = await storage.getEvents(started[0]?.runId ?? "");
        expect(first).toMatchObject({ concurrency: { key: "run:rc_per_tenant:acme", limit: 2 } });
      } finally {
        await runtime.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("keeps a run pending while another holds the slot, and a cancelled pending run frees its place", async () => {
    // Prepare
    reset();
    const slots = new MemorySlotStore();
    const runtime = new LocalRuntime({ storage: new MemoryStorage(), slots, recover: false });
    try {
      const first = await runtime.start(oneAtATime, ["first"]);
      await until(async () => (await runtime.getRun(first.runId))?.status === "suspended", "the first run");
      const cancelled = await runtime.start(oneAtATime, ["cancelled"]);
      const third = await runtime.start(oneAtATime, ["third"]);
      await runtime.idle();
      expect((await runtime.getRun(cancelled.runId))?.status).toBe("pending");
      expect((await runtime.getRun(third.runId))?.status).toBe("pending");
      expect(await slots.inspect("run:rc_one_at_a_time:", Date.now())).toEqual({
        holding: [first.runId],
        waiting: [cancelled.runId, third.runId],
      });

      // Act
      await runtime.cancelRun(cancelled.runId, "not needed");
      expect((await runtime.waitForRun(cancelled.runId, { timeoutMs: 30_000 })).status).toBe("cancelled");
      expect(await slots.inspect("run:rc_one_at_a_time:", Date.now())).toEqual({
        holding: [first.runId],
        waiting: [third.runId],
      });
      await runtime.sendEvent(first.runId, "go", null);
      expect((await runtime.waitForRun(first.runId, { timeoutMs: 30_000 })).status).toBe("completed");
      await until(async () => (await runtime.getRun(third.runId))?.status === "suspended", "the third run");
      await runtime.sendEvent(third.runId, "go", null);

      // Assess
      expect((await runtime.waitForRun(third.runId, { timeoutMs: 30_000 })).status).toBe("completed");
      expect(began).toEqual(["first", "third"]);
      expect(highest.get("solo")).toBe(1);
      expect(await slots.inspect("run:rc_one_at_a_time:", Date.now())).toEqual({ holding: [], waiting: [] });
    } finally {
      await runtime.close();
    }
  });

  it("takes the slots of unfinished runs back from the log after a restart, before letting a pending run in", async () => {
    // Prepare
    reset();
    const dir = mkdtempSync(join(tmpdir(), "tsw-run-concurrency-restart-"));
    try {
      const before = new LocalRuntime({ storage: new FileStorage({ dir }) });
      const first = await before.start(oneAtATime, ["first"]);
      await until(async () => (await before.getRun(first.runId))?.status === "suspended", "the first run");
      const second = await before.start(oneAtATime, ["second"]);
      await before.idle();
      await before.close();

      // Act: a new process has an empty slot store
      const slots = new MemorySlotStore();
      const after = new LocalRuntime({ storage: new FileStorage({ dir }), slots });
      try {
        await after.idle();
        // Assess
        expect((await after.getRun(second.runId))?.status).toBe("pending");
        expect(await slots.inspect("run:rc_one_at_a_time:", Date.now())).toEqual({
          holding: [first.runId],
          waiting: [second.runId],
        });
        await after.sendEvent(first.runId, "go", null);
        await until(async () => (await after.getRun(second.runId))?.status === "suspended", "the second run");
        await after.sendEvent(second.runId, "go", null);
        expect((await after.waitForRun(second.runId, { timeoutMs: 30_000 })).status).toBe("completed");
        expect(began).toEqual(["first", "second"]);
      } finally {
        await after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses start() with a ConfigurationError naming the workflow when its key function throws or returns no string, storing nothing", async () => {
    const boom = new Error("boom in key");
    const throwing = workflow("rc_key_throws", async () => 1, {
      concurrency: {
        limit: 1,
        key: () => {
          throw boom;
        },
      },
    });
    const numbered = workflow("rc_number_key", async (n: number) => n, {
      rateLimit: { limit: 1, period: "1s", key: (n) => n as unknown as string },
    });
    const storage = new MemoryStorage();
    const runtime = new LocalRuntime({ storage, recover: false });
    try {
      const thrown = await runtime.start(throwing, []).catch((error: unknown) => error);
      expect(thrown).toBeInstanceOf(ConfigurationError);
      expect((thrown as ConfigurationError).message).toBe(
        'workflow("rc_key_throws"): concurrency.key must return a string, but it threw Error: boom in key.',
      );
      expect((thrown as ConfigurationError).cause).toBe(boom);
      await expect(runtime.start(numbered, [7])).rejects.toThrow(
        'workflow("rc_number_key"): rateLimit.key must return a string, got 7.',
      );
      expect((await storage.listRuns({})).runs).toEqual([]);
    } finally {
      await runtime.close();
    }
  });

  it("rejects a run concurrency limit that is not a positive integer with a ConfigurationError", () => {
    expect(() => workflow("rc_bad", async () => 1, { concurrency: { limit: 0 } })).toThrow(
      ConfigurationError,
    );
    expect(() =>
      workflow("rc_bad_key", async () => 1, { concurrency: { limit: 1, key: "x" as never } }),
    ).toThrow(ConfigurationError);
  });
});
