/**
 * Workers on each local backend, built from the real adapters with the fault wrappers of faults.ts in
 * front of them. A worker is what one process runs: an engine, its queue consumer and its timers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunRecord } from "tsworkflow";
import { Engine, type EventStore, FINISHED_STATUSES } from "tsworkflow/engine";
import { FileStorage, InProcessQueue, LocalTimers, MemoryStorage } from "tsworkflow/local";
import { BullMQQueue, BullMQTimers, RedisStorage } from "tsworkflow/redis";
import { recoverRuns } from "../../../lib/engine/run-control.ts";
import { type CrashSwitch, faultyQueue, faultyStore, faultyTimers } from "./faults.ts";

export type BackendName = "memory" | "file" | "redis";

/** One process's worth of tsworkflow: stopping it loses everything it held in memory. */
export interface Worker {
  engine: Engine;
  stop(): Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  /**
   * A stored step outcome survives the death of the worker that stored it. (The file backend keeps
   * outcomes in memory until a commit takes them into the log: after a crash the step runs again.)
   */
  readonly durableOutcomes: boolean;
  /** Starts a worker as a new process would: on the local backends it resumes unfinished runs at once. */
  startWorker(crash: CrashSwitch): Promise<Worker>;
  /** What a new process finds after the old one died (the file backend reopens its directory). */
  restart(): Promise<void>;
  /** A store for assertions. */
  reader(): EventStore;
  close(): Promise<void>;
}

/** Waits until the run has finished (any backend), or fails naming its last state. */
export async function waitForFinished(
  store: EventStore,
  runId: string,
  timeoutMs = 20_000,
): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  let last: RunRecord | undefined;
  for (;;) {
    last = await store.getRun(runId);
    if (last && FINISHED_STATUSES.has(last.status)) return last;
    if (Date.now() > deadline)
      throw new Error(`run ${runId} did not finish within ${timeoutMs} ms (status ${last?.status})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Backend options: `inlineSteps` as `LocalRuntime` and `createRedisRuntime` set it by default. */
export interface BackendOptions {
  inlineSteps?: boolean;
}

/** The embedded worker: in-process queue and real timers, over whatever store the backend holds. */
async function localWorker(store: EventStore, crash: CrashSwitch, options: BackendOptions): Promise<Worker> {
  const inProcess = new InProcessQueue({ retryDelayMs: 20 });
  const queue = faultyQueue(inProcess, crash);
  const localTimers = new LocalTimers(queue, { now: () => Date.now() }, "real");
  const engine = new Engine({
    store: faultyStore(store, crash),
    queue,
    timers: faultyTimers(localTimers, crash),
    inlineSteps: options.inlineSteps ?? false,
  });
  inProcess.consume({
    activate: (task) => engine.activate(task),
    executeStep: (task) => engine.executeStep(task),
  });
  // What LocalRuntime does when it starts: resume every unfinished run found in the store.
  await recoverRuns(engine);
  return {
    engine,
    async stop() {
      localTimers.clear();
      await inProcess.close();
    },
  };
}

export function memoryBackend(options: BackendOptions = {}): Backend {
  const store = new MemoryStorage();
  return {
    name: "memory",
    durableOutcomes: true,
    startWorker: (crash) => localWorker(store, crash, options),
    restart: async () => {},
    reader: () => store,
    close: () => store.close(),
  };
}

/** The file backend in `dir` (a new temporary directory by default, removed by `close`). */
export function fileBackend(
  dir = mkdtempSync(join(tmpdir(), "tsw-reliability-")),
  options: BackendOptions = {},
): Backend {
  let store = new FileStorage({ dir });
  return {
    name: "file",
    durableOutcomes: false,
    startWorker: (crash) => localWorker(store, crash, options),
    async restart() {
      // The dead process's writes are in the files; the new process reads them back from disk.
      await store.close();
      store = new FileStorage({ dir });
    },
    reader: () => store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let redisNamespaces = 0;

/**
 * Redis workers: each its own connections, BullMQ consumer and engine, in a fresh key prefix. With
 * `inlineSteps` (what `createRedisRuntime` does), a run's sequential steps run inside its activation.
 */
export function redisBackend(url: string, options: BackendOptions = {}): Backend {
  redisNamespaces += 1;
  const prefix = `rel-${process.pid}-${redisNamespaces}:`;
  const reader = new RedisStorage({ redis: url, prefix });
  const workers = new Set<Worker>();
  return {
    name: "redis",
    durableOutcomes: true,
    async startWorker(crash) {
      const storage = new RedisStorage({ redis: url, prefix });
      const bullmq = new BullMQQueue({ redis: storage.client, prefix });
      const queue = faultyQueue(bullmq, crash);
      const timers = faultyTimers(new BullMQTimers({ queue: bullmq }), crash);
      const engine = new Engine({
        store: faultyStore(storage, crash),
        queue,
        timers,
        inlineSteps: options.inlineSteps ?? false,
      });
      const consumer = await bullmq.consume(
        {
          activate: (task, lease) => engine.activate(task, lease),
          executeStep: (task) => engine.executeStep(task),
        },
        { concurrency: 4, workerId: `reliability-${redisNamespaces}-${workers.size}` },
      );
      const worker: Worker = {
        engine,
        async stop() {
          workers.delete(worker);
          await consumer.close();
          await bullmq.close();
          await storage.close();
        },
      };
      workers.add(worker);
      return worker;
    },
    restart: async () => {},
    reader: () => reader,
    async close() {
      await Promise.all([...workers].map((worker) => worker.stop()));
      await reader.close();
    },
  };
}
