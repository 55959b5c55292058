import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, sleep, step, TimeoutError, type WorkflowEvent, workflow } from "tsworkflow";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

let dir: string;
const runtimes: LocalRuntime[] = [];

const open = (options: ConstructorParameters<typeof LocalRuntime>[0] = { dir }) => {
  const runtime = new LocalRuntime(options);
  runtimes.push(runtime);
  return runtime;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tsw-local-runtime-"));
  configureLogging({ level: "silent" });
});

afterEach(async () => {
  vi.useRealTimers();
  for (const runtime of runtimes.splice(0)) await runtime.close();
  rmSync(dir, { recursive: true, force: true });
});

const calls: Record<string, number> = {};
const count = (name: string) => {
  calls[name] = (calls[name] ?? 0) + 1;
};

const fetchData = step("lr_fetch", async (id: string) => {
  count("lr_fetch");
  return { id, value: id.length };
});
const store = step("lr_store", async (value: number) => {
  count("lr_store");
  return value * 10;
});
const nightly = workflow("lr_nightly", async (id: string) => {
  const data = await fetchData(id);
  await sleep("1h");
  return store(data.value);
});

const stepIds = (events: WorkflowEvent[]) =>
  events.flatMap((e) => (e.type === "step_started" ? [e.stepId] : []));

describe("LocalRuntime", () => {
  it("replays recorded steps without running them again after a restart on the same directory", async () => {
    // Prepare
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    for (const key of Object.keys(calls)) delete calls[key];
    const first = open();
    const { runId } = await first.start(nightly, ["abc"]);
    await vi.waitFor(async () => expect((await first.getRun(runId))?.status).toBe("suspended"));
    await first.close();
    vi.setSystemTime(Date.now() + 2 * 3_600_000);
    // Act
    const second = open();
    const run = await second.waitForRun(runId, { timeoutMs: 10_000 });
    // Assess
    expect(run.status).toBe("completed");
    expect(run.result).toBe(30);
    expect(calls).toEqual({ lr_fetch: 1, lr_store: 1 });
    expect(stepIds(await second.getEvents(runId))).toEqual(["lr_fetch#0", "lr_store#0"]);
  });

  it("fires sleeps as real timers while it runs", async () => {
    // Prepare
    const brief = workflow("lr_brief", async () => {
      await sleep("20ms");
      await sleep({ milliseconds: 20 });
      return "woke twice";
    });
    const runtime = open({ storage: new MemoryStorage() });
    // Act
    const { runId } = await runtime.start(brief, []);
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    // Assess
    expect(run.result).toBe("woke twice");
    expect((await runtime.getEvents(runId)).filter((e) => e.type === "sleep_completed")).toHaveLength(2);
  });

  it("gives up waiting for a run with a TimeoutError after timeoutMs", async () => {
    // Prepare
    const runtime = open({ storage: new MemoryStorage() });
    const { runId } = await runtime.start(nightly, ["slow"]);
    // Act
    const waited = runtime.waitForRun(runId, { timeoutMs: 50 });
    // Assess
    await expect(waited).rejects.toThrow(TimeoutError);
  });

  it("parks a run whose workflow is not registered yet, and runs it once a module registers it", async () => {
    // Prepare
    const storage = new FileStorage({ dir });
    const now = new Date().toISOString();
    const runId = "run_lr_parked_1";
    await storage.createRun({
      run: {
        runId,
        workflowName: "lr_late",
        status: "pending",
        input: [2],
        createdAt: now,
        updatedAt: now,
        version: 1,
      },
      startedEvent: {
        runId,
        seq: 1,
        timestamp: now,
        type: "workflow_started",
        workflowName: "lr_late",
        input: [2],
      },
    });
    const runtime = open({ storage });
    await runtime.idle();
    const parked = await runtime.getRun(runId);
    // Act
    workflow("lr_late", async (n: number) => n + 40);
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    // Assess
    expect(parked?.status).toBe("pending");
    expect(run.status).toBe("completed");
    expect(run.result).toBe(42);
  });

  it("runs many runs at once to completion", async () => {
    // Prepare
    const square = step("lr_square", async (n: number) => n * n);
    const sumOfSquares = workflow("lr_sum_of_squares", async (n: number) => {
      const squares = await Promise.all([square(n), square(n + 1), square(n + 2)]);
      return squares.reduce((a, b) => a + b, 0);
    });
    const runtime = open({ storage: new MemoryStorage(), concurrency: 4 });
    // Act
    const started = await Promise.all(Array.from({ length: 30 }, (_, n) => runtime.start(sumOfSquares, [n])));
    const runs = await Promise.all(
      started.map(({ runId }) => runtime.waitForRun(runId, { timeoutMs: 10_000 })),
    );
    // Assess
    expect(runs.map((run) => run.result)).toEqual(
      Array.from({ length: 30 }, (_, n) => n * n + (n + 1) ** 2 + (n + 2) ** 2),
    );
    expect(
      (await runtime.listRuns({ status: "completed", workflowName: "lr_sum_of_squares", limit: 100 })).runs,
    ).toHaveLength(30);
  });
});
