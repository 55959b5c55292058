import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  configureLogging,
  RuntimeClosedError,
  sleep,
  step,
  TimeoutError,
  type WorkflowEvent,
  workflow,
} from "tsworkflow";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { spawnChild } from "./support/child.ts";

const contender = join(import.meta.dirname, "fixtures", "lock-contender.ts");

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

/** The names in a folder of the directory (none when it does not exist). */
const namesIn = (folder: string) =>
  existsSync(join(dir, folder)) ? readdirSync(join(dir, folder)).sort() : [];

describe("LocalRuntime, once closed", () => {
  it("refuses start, sendEvent, cancelRun and retryRun with RuntimeClosedError, and writes nothing into the directory another process holds now", async () => {
    // Prepare
    const runtime = open();
    const { runId } = await runtime.start(nightly, ["closing"]);
    await vi.waitFor(async () => expect((await runtime.getRun(runId))?.status).toBe("suspended"));
    await runtime.close();
    const other = spawnChild(contender, [dir]);
    try {
      await other.next((m) => m.event === "ready", "the other process is ready");
      other.send("go 0");
      const won = await other.next((m) => m.event === "won", "the other process holds the directory");
      const ownFile = join(dir, "runs", `${runId}.jsonl`);
      const ownSize = statSync(ownFile).size;
      // Act
      const attempts = {
        start: runtime.start(nightly, ["late"]),
        sendEvent: runtime.sendEvent(runId, "nudge", 1),
        cancelRun: runtime.cancelRun(runId),
        retryRun: runtime.retryRun(runId),
      };
      // Assess
      for (const [what, attempt] of Object.entries(attempts))
        await expect(attempt, what).rejects.toThrow(RuntimeClosedError);
      await expect(runtime.start(nightly, ["late"])).rejects.toThrow("Create a new LocalRuntime");
      expect(namesIn("runs")).toEqual([runId, ...(won.runIds as string[])].map((id) => `${id}.jsonl`).sort());
      expect(statSync(ownFile).size).toBe(ownSize);
      expect(namesIn("inbox")).toEqual([]);
    } finally {
      await other.kill();
    }
  });

  it("stores what a step running when close() is called returns, before it lets go of the directory", async () => {
    // Prepare
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let attempts = 0;
    const slowStep = step("lr_slow_step", async () => {
      attempts += 1;
      await released;
      return "slow, but stored";
    });
    const slow = workflow("lr_slow", async () => {
      const value = await slowStep();
      await sleep("1h");
      return value;
    });
    const runtime = open();
    const { runId } = await runtime.start(slow, []);
    await vi.waitFor(() => expect(attempts).toBe(1));
    // Act
    const closing = runtime.close();
    release();
    await closing;
    // Assess
    const reopened = new FileStorage({ dir });
    try {
      expect((await reopened.getRun(runId))?.status).toBe("suspended");
      expect(await reopened.getEvents(runId)).toContainEqual(
        expect.objectContaining({ type: "step_completed", result: "slow, but stored" }),
      );
    } finally {
      await reopened.close();
    }
  });

  it("rejects a wait for a run that has not finished when it closes with RuntimeClosedError, and still answers for a finished run", async () => {
    // Prepare
    const double = workflow("lr_double", async (n: number) => n * 2);
    const runtime = open({ storage: new MemoryStorage() });
    const { runId: sleeping } = await runtime.start(nightly, ["waits"]);
    const { runId: done } = await runtime.start(double, [21]);
    await runtime.waitForRun(done, { timeoutMs: 10_000 });
    await vi.waitFor(async () => expect((await runtime.getRun(sleeping))?.status).toBe("suspended"));
    const waiting = runtime.waitForRun(sleeping).catch((error: unknown) => error);
    // Act
    await runtime.close();
    // Assess
    expect(await waiting).toBeInstanceOf(RuntimeClosedError);
    await expect(runtime.waitForRun(sleeping)).rejects.toThrow(`Run ${sleeping} is suspended`);
    expect((await runtime.waitForRun(done)).result).toBe(42);
  });
});
