/**
 * Load (see bench/run.ts; alone: `BENCH_ONLY=load npm run bench`): 10,000 runs asleep at once on the
 * embedded file backend and on Redis, all woken when due, none lost.
 *
 * Each run sleeps until one shared instant, set far enough ahead that every run has gone to sleep
 * before it (from a measured start rate), then runs one step. Reported per backend: how long starting
 * took, how many runs were asleep at once, how long after the instant the last run completed, how late
 * runs woke (sleep_completed against the sleep's resumeAt: p50, p99, max), runs lost (not completed with
 * their own result and exactly one sleep_completed), and the peak RSS of this process (which holds the
 * engine, the queue consumer and, for the file backend, the store's index), plus redis-server's peak.
 *
 * Options (environment): LOAD_RUNS=<n> (default 10000), LOAD_SLEEP_MS=<ms> asleep after the last start
 * (default 3000), LOAD_BACKENDS=file,redis.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, type Runtime, sleep, step, workflow } from "tsworkflow";
import type { EventStore } from "tsworkflow/engine";
import { FileStorage, LocalRuntime } from "tsworkflow/local";
import { createRedisRuntime, startRedisServer } from "tsworkflow/redis";

const RUNS = Number(process.env.LOAD_RUNS ?? 10_000);
const SLEEP_MS = Number(process.env.LOAD_SLEEP_MS ?? 3_000);
const BACKENDS = (process.env.LOAD_BACKENDS ?? "file,redis").split(",");
const CHUNK = 500;

const touch = step("load_touch", async (n: number) => n);

/** Sleeps until `wakeAt`, then runs one step: its result is its own number. */
export const sleeper = workflow("load_sleeper", async (n: number, wakeAt: number) => {
  await sleep(new Date(wakeAt));
  return touch(n);
});

/** Measures the start rate before the real starts, so that the shared wake-up falls after the last of them. */
export const noop = workflow("load_noop", async (n: number) => n);

export interface LoadRow {
  backend: string;
  runs: number;
  /** From the first start until every run is asleep (started, and its first activation done). */
  startSeconds: number;
  asleepAtOnce: number;
  /** From the shared wake-up instant to the last run's completion. */
  resumeSeconds: number;
  lateP50: number;
  lateP99: number;
  lateMax: number;
  lost: number;
  peakRssMb: number;
  note: string;
}

/** Tracks this process's peak resident set size while it runs. */
function rssSampler(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss) / 2 ** 20;
    },
  };
}

async function inChunks<T>(count: number, fn: (index: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let first = 0; first < count; first += CHUNK) {
    const size = Math.min(CHUNK, count - first);
    out.push(...(await Promise.all(Array.from({ length: size }, (_, offset) => fn(first + offset)))));
  }
  return out;
}

async function until(what: string, deadline: number, probe: () => Promise<boolean>): Promise<void> {
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`load: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0
    ? 0
    : (sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number);

/** Starts the runs, waits until all are asleep and then all are done, and checks every one of them. */
async function measure(
  backend: string,
  runtime: Runtime,
  store: EventStore,
): Promise<Omit<LoadRow, "peakRssMb">> {
  // The time a run takes to be started and put to sleep, measured on runs that only start and finish.
  const calibration = Math.min(500, RUNS);
  const calibrationStarted = performance.now();
  const probes = await inChunks(calibration, (n) => runtime.start(noop, [n]));
  await Promise.all(probes.map(({ runId }) => runtime.waitForRun(runId)));
  const perRunMs = (performance.now() - calibrationStarted) / calibration;
  const wakeAt = Date.now() + Math.ceil(perRunMs * RUNS * 2) + 2_000 + SLEEP_MS;

  const started = performance.now();
  const runIds = (await inChunks(RUNS, (n) => runtime.start(sleeper, [n, wakeAt]))).map((r) => r.runId);
  let asleep = 0;
  const asleepCount = async () =>
    (await store.listRuns({ status: "suspended", workflowName: sleeper.name, limit: RUNS + 1 })).runs.length;
  while (Date.now() < wakeAt - 100) {
    asleep = await asleepCount();
    if (asleep === RUNS) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const startSeconds = (performance.now() - started) / 1000;
  const note = asleep === RUNS ? "" : `only ${asleep} asleep at the wake-up: the start estimate was short`;

  await until("every run to complete", wakeAt + 300_000, async () => {
    const done = await store.listRuns({ status: "completed", workflowName: sleeper.name, limit: RUNS + 1 });
    return done.runs.length === RUNS;
  });
  const resumeSeconds = (Date.now() - wakeAt) / 1000;

  const late: number[] = [];
  let lost = 0;
  await inChunks(RUNS, async (n) => {
    const runId = runIds[n] as string;
    const [run, events] = await Promise.all([store.getRun(runId), store.getEvents(runId)]);
    const woke = events.filter((event) => event.type === "sleep_completed");
    const slept = events.find((event) => event.type === "sleep_created");
    if (
      run?.status !== "completed" ||
      run.result !== n ||
      woke.length !== 1 ||
      slept?.type !== "sleep_created"
    ) {
      lost += 1;
      return;
    }
    late.push(Date.parse((woke[0] as (typeof woke)[number]).timestamp) - slept.resumeAt);
  });
  late.sort((a, b) => a - b);
  return {
    backend,
    runs: RUNS,
    startSeconds,
    asleepAtOnce: asleep,
    resumeSeconds,
    lateP50: percentile(late, 50),
    lateP99: percentile(late, 99),
    lateMax: late.at(-1) ?? 0,
    lost,
    note,
  };
}

async function fileLoad(): Promise<LoadRow> {
  const dir = mkdtempSync(join(tmpdir(), "tsw-load-"));
  const rss = rssSampler();
  const storage = new FileStorage({ dir });
  const runtime = new LocalRuntime({ storage, concurrency: 100 });
  try {
    const row = await measure("file (embedded, fdatasync)", runtime, storage);
    return { ...row, peakRssMb: rss.stop() };
  } finally {
    rss.stop();
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function redisLoad(): Promise<LoadRow> {
  const server = await startRedisServer();
  const rss = rssSampler();
  const runtime = createRedisRuntime({ url: server.url, prefix: "load:", concurrency: 50 });
  try {
    await runtime.startWorker();
    const row = await measure("Redis (1 worker in this process, concurrency 50)", runtime, runtime.storage);
    const info = await runtime.storage.client.info("memory");
    const redisPeak = Number(/used_memory_peak:(\d+)/.exec(info)?.[1] ?? 0) / 2 ** 20;
    return {
      ...row,
      peakRssMb: rss.stop(),
      note: [row.note, `redis-server peak ${redisPeak.toFixed(0)} MB`].filter(Boolean).join("; "),
    };
  } finally {
    rss.stop();
    await runtime.close();
    await server.stop();
  }
}

function print(rows: LoadRow[]): void {
  const header = [
    "backend",
    "runs",
    "all asleep after",
    "asleep at once",
    "all done after wake-up",
    "late p50/p99/max",
    "lost",
    "peak RSS",
    "",
  ];
  const table = rows.map((row) => [
    row.backend,
    String(row.runs),
    `${row.startSeconds.toFixed(1)} s`,
    String(row.asleepAtOnce),
    `${row.resumeSeconds.toFixed(1)} s`,
    `${row.lateP50} / ${row.lateP99} / ${row.lateMax} ms`,
    row.lost === 0 ? "0" : `${row.lost} LOST`,
    `${row.peakRssMb.toFixed(0)} MB`,
    row.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? "").length)));
  for (const line of [header, ...table])
    console.log(line.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  "));
}

/** Runs the load benchmark on each backend and prints its table. */
export async function loadBenchmarks(): Promise<LoadRow[]> {
  configureLogging({ level: "error" });
  console.log(
    `\nLoad: ${RUNS} runs asleep at once, woken together at one instant (${SLEEP_MS / 1000} s or more after the last start), then one step each`,
  );
  const rows: LoadRow[] = [];
  if (BACKENDS.includes("file")) rows.push(await fileLoad());
  if (BACKENDS.includes("redis")) rows.push(await redisLoad());
  print(rows);
  if (rows.some((row) => row.lost > 0)) process.exitCode = 1;
  return rows;
}
