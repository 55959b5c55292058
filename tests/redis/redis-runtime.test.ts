import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisUnavailableError } from "../../lib/adapters/redis/connection.ts";
import {
  ConfigurationError,
  RuntimeClosedError,
  StorageClosedError,
  TimeoutError,
} from "../../lib/core/errors.ts";
import type { EventOf } from "../../lib/core/events.ts";
import { waitForEvent } from "../../lib/core/primitives.ts";
import { continueAsNew } from "../../lib/core/versioning.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { continuationRunIdOf } from "../../lib/engine/continuation.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { sequential } from "./fixtures/workflows.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

let server: RedisServer;
const open: RedisRuntime[] = [];
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  for (const runtime of open) await runtime.close();
  await server?.stop();
});

/** Continues as new up to generation `last`, which waits for the event "go" and returns it. */
const generations = workflow("redis_generations", async (generation: number, last: number) =>
  generation < last ? continueAsNew(generation + 1, last) : `gen ${generation}: ${await waitForEvent("go")}`,
);

const waitsForGo = workflow("redis_waits_for_go", async () => waitForEvent<string>("go"));

/**
 * A TCP proxy to redis-server that can be cut off for a while, as a server that went away: its connections
 * dropped and its port refusing new ones.
 */
async function outageProxy(port: number) {
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = (at: number) => new Promise<void>((resolve) => proxy.listen(at, "127.0.0.1", resolve));
  await listen(0);
  const proxyPort = (proxy.address() as AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${proxyPort}`,
    async cut() {
      const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    restore: () => listen(proxyPort),
    close: () => new Promise<void>((resolve) => proxy.close(() => resolve())),
  };
}

function runtimes(count: number): RedisRuntime[] {
  const prefix = `tsw-rt-${process.pid}-${++prefixes}:`;
  const created = Array.from({ length: count }, (_, i) =>
    createRedisRuntime({ url: server.url, prefix, workerId: `w${i}` }),
  );
  open.push(...created);
  return created;
}

/** Runs the step the log last started, as a step executor on `runtime` would. */
async function runLastStartedStep(runtime: RedisRuntime, runId: string): Promise<EventOf<"step_started">> {
  const started = (await runtime.getEvents(runId)).findLast(
    (e): e is EventOf<"step_started"> => e.type === "step_started",
  );
  if (!started) throw new Error("no step started");
  await runtime.engine.executeStep({
    runId,
    workflowName: "redis_sequential",
    stepId: started.stepId,
    stepName: started.stepName,
    attempt: started.attempt,
    input: started.input,
  });
  return started;
}

describe("createRedisRuntime", () => {
  it("advances a run whose activations alternate between two workers", async () => {
    // Prepare: two engines on one Redis, driven by hand so that each sees the run go on without it.
    const [a, b] = runtimes(2) as [RedisRuntime, RedisRuntime];
    const { runId } = await a.start(sequential, [1]);
    await a.engine.activate({ runId, cause: { kind: "start" } });
    // Act
    for (const [executor, activator] of [
      [b, b],
      [a, a],
      [b, a],
    ] as const) {
      const step = await runLastStartedStep(executor, runId);
      await activator.engine.activate({
        runId,
        cause: { kind: "outcome", stepId: step.stepId, attempt: step.attempt },
      });
    }
    // Assess
    const run = await a.getRun(runId);
    expect(run).toMatchObject({ status: "completed", result: 8 });
    const completed = (await a.getEvents(runId)).filter((e) => e.type === "step_completed");
    expect(completed.map((e) => (e as EventOf<"step_completed">).stepId)).toEqual([
      "double#0",
      "double#1",
      "double#2",
    ]);
  });

  it("waits for a run and reports a missing one", async () => {
    // Prepare
    const [runtime] = runtimes(1) as [RedisRuntime];
    await runtime.startWorker();
    const { runId } = await runtime.start(sequential, [2]);
    // Act
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    // Assess
    expect(run).toMatchObject({ status: "completed", result: 16 });
    await expect(runtime.waitForRun("run_missing")).rejects.toThrow(/No run with id "run_missing"/);
    expect((await runtime.listRuns({ workflowName: "redis_sequential" })).runs.map((r) => r.runId)).toEqual([
      runId,
    ]);
  });

  it("refuses a poll longer than a Node timer holds in waitForRun, which would poll without a pause", async () => {
    // Prepare
    const [runtime] = runtimes(1) as [RedisRuntime];
    const { runId } = await runtime.start(sequential, [2]);
    // Act
    const waiting = runtime.waitForRun(runId, { pollMs: 2 ** 31 });
    // Assess
    await expect(waiting).rejects.toThrow(
      new ConfigurationError(
        "waitForRun(): pollMs must be at most 2147483647 ms (about 24.8 days, the longest a timer waits), got 2147483648.",
      ),
    );
  });

  it("waits out a short Redis outage in waitForRun, as the workers do, up to its timeout", async () => {
    // Prepare: a worker on Redis itself; the waiting client through a proxy that is cut for 4 s.
    const prefix = `tsw-rt-${process.pid}-outage:`;
    const worker = createRedisRuntime({ url: server.url, prefix, workerId: "w-outage" });
    open.push(worker);
    await worker.startWorker();
    const proxy = await outageProxy(server.port);
    const waiter = createRedisRuntime({ url: proxy.url, prefix });
    open.push(waiter);
    try {
      const { runId } = await waiter.start(waitsForGo, []);
      const waiting = waiter.waitForRun(runId, { timeoutMs: 30_000 });
      // Act: the outage; the run is told to go on meanwhile, through the worker.
      await proxy.cut();
      await worker.sendEvent(runId, "go", "went");
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      await proxy.restore();
      // Assess
      await expect(waiting).resolves.toMatchObject({ status: "completed", result: "went" });
      // Redis still away when the timeout comes: the wait gives up then, saying why.
      const { runId: other } = await waiter.start(waitsForGo, []);
      await proxy.cut();
      const began = Date.now();
      const failure = await waiter.waitForRun(other, { timeoutMs: 2_000 }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(RedisUnavailableError);
      expect(Date.now() - began).toBeGreaterThanOrEqual(1_900);
      await proxy.restore();
    } finally {
      await waiter.close();
      await proxy.close();
    }
  });

  it("follows a continueAsNew chain to its last run in getRun and waitForRun when asked, within one timeout", async () => {
    // Prepare: a chain of three runs whose last one waits for an event.
    const [runtime] = runtimes(1) as [RedisRuntime];
    await runtime.startWorker();
    const { runId } = await runtime.start(generations, [1, 3]);
    const lastId = continuationRunIdOf(continuationRunIdOf(runId));
    // Act
    const stillWaiting = await runtime
      .waitForRun(runId, { followContinuations: true, timeoutMs: 1_000 })
      .catch((error: unknown) => error);
    const waiting = await runtime.getRun(runId, { followContinuations: true });
    await runtime.sendEvent(runId, "go", "went");
    const last = await runtime.waitForRun(runId, { followContinuations: true, timeoutMs: 10_000 });
    const first = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    // Assess
    expect(stillWaiting).toBeInstanceOf(TimeoutError);
    expect((stillWaiting as TimeoutError).message).toMatch(
      new RegExp(`^Run ${lastId} is still suspended after \\d+ ms`),
    );
    expect(waiting).toMatchObject({ runId: lastId, status: "suspended" });
    expect(last).toMatchObject({ runId: lastId, status: "completed", result: "gen 3: went" });
    expect(await runtime.getRun(runId, { followContinuations: true })).toEqual(last);
    expect(first).toMatchObject({ runId, status: "continued", continuedAs: continuationRunIdOf(runId) });
    expect(await runtime.getRun(runId)).toEqual(first);
    expect(await runtime.getRun("run_missing", { followContinuations: true })).toBeUndefined();
  });

  it("refuses start, sendEvent, cancelRun, retryRun and startWorker after close with RuntimeClosedError, reads with StorageClosedError, and another runtime finds the runs", async () => {
    // Prepare
    const [closed, other] = runtimes(2) as [RedisRuntime, RedisRuntime];
    const { runId } = await closed.start(sequential, [3]);
    await closed.close();
    // Act
    const attempts = {
      start: closed.start(sequential, [4]),
      sendEvent: closed.sendEvent(runId, "nudge", 1),
      cancelRun: closed.cancelRun(runId),
      retryRun: closed.retryRun(runId),
      startWorker: closed.startWorker(),
    };
    // Assess
    for (const [what, attempt] of Object.entries(attempts))
      await expect(attempt, what).rejects.toThrow(RuntimeClosedError);
    await expect(closed.start(sequential, [4])).rejects.toThrow("createRedisRuntime()");
    await expect(closed.getRun(runId)).rejects.toThrow(StorageClosedError);
    await other.startWorker();
    expect(await other.waitForRun(runId, { timeoutMs: 10_000 })).toMatchObject({ status: "completed" });
    expect((await other.listRuns({ workflowName: "redis_sequential" })).runs).toHaveLength(1);
  });
});
