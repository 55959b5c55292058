/**
 * Redis benchmarks (see bench/run.ts): tsworkflow with 2 worker processes beside raw BullMQ with 2 worker
 * processes, measured in the same run on the same throwaway redis-server, rounds interleaved so that both
 * see the same machine load.
 *
 * - W1: 200 runs × 10 sequential steps started together (steps/s); raw: 200 chains × 10 jobs (one job per
 *   step, each job enqueues the next).
 * - W2: one run of 1000 sequential steps (ms); raw: one chain of 1000 jobs.
 * - W3: what a 2 s sleep adds beyond its 2 s (ms).
 *
 * Runs are started from this process with createRedisRuntime (no worker here). Workers run
 * bench/redis-worker.ts with concurrency 50 (activations and steps each, for tsworkflow).
 *
 * Also printed: CPU time per step of each side (its workers, redis-server and this process, from /proc on
 * Linux), which says more than throughput on a machine that is busy with other work.
 *
 * Options (environment): BENCH_REDIS_ROUNDS=<n> (default 3); BENCH_REDIS_PROFILE=1 adds one W1 and one raw
 * round under MONITOR and prints Redis commands per step (sent by clients, run inside scripts);
 * BENCH_CPU_PROF=<dir> starts the workers with --cpu-prof and writes their profiles there.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createRedisRuntime, type RedisRuntime, type RedisServer, startRedisServer } from "tsworkflow/redis";
import { manySteps, sleepy, tenSteps } from "./core.ts";

/** The data of a raw BullMQ job: step `index` of a chain of `length` jobs, carrying a counter. */
export interface RawStep {
  batch: string;
  index: number;
  length: number;
  n: number;
}

/** The queue of the raw BullMQ baseline (under BullMQ prefix `<prefix>bull`). */
export const RAW_QUEUE = "raw-steps";

/** A row of the table bench/run.ts prints. */
export interface BenchRow {
  workload: string;
  median: number;
  unit: string;
  target: string;
  ok: boolean | undefined;
  runs: number[];
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORKERS = 2;
const CONCURRENCY = 50;
const ROUNDS = 3;
const WARM_UP_ROUNDS = 5;
const TSW_PREFIX = "bench-tsw:";
const RAW_PREFIX = "bench-raw:";

interface WorkerProcess {
  child: ChildProcess;
  stop(): Promise<void>;
}

/** CPU time (user + sys, ms) a process has used so far, from /proc (Linux); undefined elsewhere. */
function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the command name (which is in parentheses): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS = 100;

/** CPU ms used by a group of processes while `fn` runs, or NaN when it cannot be read. */
async function cpuDuring<T>(
  pids: (number | undefined)[],
  fn: () => Promise<T>,
): Promise<{ value: T; cpuMs: number }> {
  const total = () => pids.reduce<number>((sum, pid) => sum + (processCpuMs(pid) ?? Number.NaN), 0);
  const before = total();
  const value = await fn();
  return { value, cpuMs: total() - before };
}

function startWorker(kind: "tsw" | "raw", url: string, index: number): Promise<WorkerProcess> {
  const prefix = kind === "tsw" ? TSW_PREFIX : RAW_PREFIX;
  const profileDir = process.env.BENCH_CPU_PROF;
  const args = [
    ...(profileDir
      ? ["--cpu-prof", "--cpu-prof-dir", profileDir, "--cpu-prof-name", `${kind}-${index}.cpuprofile`]
      : []),
    "--import",
    "tsx",
    "bench/redis-worker.ts",
    kind,
    url,
    prefix,
    `${kind}-worker-${index}`,
    String(CONCURRENCY),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const timeout = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${kind} worker ${index} did not start within 30 s: ${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("ready")) {
        clearTimeout(timeout);
        resolve({
          child,
          stop: async () => {
            child.kill("SIGTERM");
            const kill = setTimeout(() => child.kill("SIGKILL"), 15_000);
            await exited;
            clearTimeout(kill);
          },
        });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      process.stderr.write(chunk);
    });
    void exited.then(() => {
      clearTimeout(timeout);
      reject(new Error(`${kind} worker ${index} exited: ${output}`));
    });
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** tsworkflow: `runs` runs of `tenSteps` started together; steps per second until all have completed. */
async function tswBatch(runtime: RedisRuntime, runs: number): Promise<number> {
  const began = performance.now();
  const ids = await Promise.all(Array.from({ length: runs }, () => runtime.start(tenSteps, [])));
  // One run polled at a time (most are done by the time their turn comes), so polling adds little load.
  for (const { runId } of ids) {
    const run = await runtime.waitForRun(runId, { pollMs: 10, timeoutMs: 120_000 });
    if (run.status !== "completed" || run.result !== 10)
      throw new Error(`W1: run ${runId} ended ${run.status}`);
  }
  return (runs * 10) / ((performance.now() - began) / 1000);
}

/** tsworkflow: milliseconds for one run of `count` sequential steps. */
async function tswChain(runtime: RedisRuntime, count: number): Promise<number> {
  const began = performance.now();
  const { runId } = await runtime.start(manySteps, [count]);
  const run = await runtime.waitForRun(runId, { pollMs: 5, timeoutMs: 120_000 });
  if (run.status !== "completed" || run.result !== count) throw new Error(`W2: the run ended ${run.status}`);
  return performance.now() - began;
}

/** tsworkflow: milliseconds a 2 s sleep adds beyond its 2 s. */
async function tswSleep(runtime: RedisRuntime): Promise<number> {
  const began = performance.now();
  const { runId } = await runtime.start(sleepy, []);
  const run = await runtime.waitForRun(runId, { pollMs: 5, timeoutMs: 30_000 });
  if (run.status !== "completed") throw new Error(`W3: the run ended ${run.status}`);
  return performance.now() - began - 2000;
}

/** Raw BullMQ: `chains` chains of `length` jobs started together; returns the elapsed milliseconds. */
async function rawChains(
  queue: Queue<RawStep>,
  client: Redis,
  chains: number,
  length: number,
): Promise<number> {
  const batch = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const done = `${RAW_PREFIX}done:${batch}`;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: chains }, () =>
      queue.add("step", { batch, index: 0, length, n: 0 }, { removeOnComplete: true, removeOnFail: true }),
    ),
  );
  const deadline = Date.now() + 120_000;
  while (Number((await client.get(done)) ?? 0) < chains) {
    if (Date.now() > deadline) throw new Error(`raw BullMQ: chains of batch ${batch} did not finish`);
    await pause(chains === 1 ? 5 : 10);
  }
  const ms = performance.now() - began;
  await client.del(done);
  return ms;
}

/**
 * Raw BullMQ's W1 as a baseline for another group (core W1 on the embedded backend): a throwaway
 * redis-server and 2 raw worker processes with concurrency 50, as in the Redis group.
 */
export async function startRawBaseline(): Promise<{ w1(): Promise<number>; stop(): Promise<void> }> {
  const server = await startRedisServer();
  const client = new Redis(server.url);
  const workers = await Promise.all(
    Array.from({ length: WORKERS }, (_, i) => startWorker("raw", server.url, i + 1)),
  );
  const queue = new Queue<RawStep>(RAW_QUEUE, { connection: client, prefix: `${RAW_PREFIX}bull` });
  return {
    w1: async () => 2000 / ((await rawChains(queue, client, 200, 10)) / 1000),
    async stop() {
      await Promise.allSettled(workers.map((worker) => worker.stop()));
      await queue.close().catch(() => {});
      client.disconnect();
      await server.stop();
    },
  };
}

/** A key without its prefix and ids: `bench-tsw:run:abc` → `run:*`, `bench-raw:bull:raw-steps:12` → `bull:raw-steps:*`. */
function keyKind(key: string | undefined): string {
  if (!key) return "";
  const bare = key.replace(/^bench-(tsw|raw):/, "");
  const bull = /^(bull:[^:]+):(.+)$/.exec(bare);
  if (bull) return /^[a-z-]+$/.test(bull[2] as string) ? bare : `${bull[1]}:*`;
  return bare.replace(/:.*$/, ":*");
}

/**
 * Redis-side cost of `fn`, from MONITOR, per step: commands sent by clients, each named by its first key (a
 * script call by the number of keys it takes and the first command it runs, which tells the scripts apart), and
 * the commands run inside scripts.
 */
async function monitorPerStep(url: string, steps: number, fn: () => Promise<unknown>): Promise<string> {
  const admin = new Redis(url);
  const monitor = await admin.monitor();
  const calls = new Map<string, { count: number; inside: number }>();
  let client = 0;
  let lua = 0;
  // MONITOR shows a script call before the commands it runs (Redis 7).
  let script: { name: string; first: string | undefined; inside: number } | undefined;
  const settle = () => {
    if (!script) return;
    const name = `${script.name} → ${script.first ?? "(nothing)"}`;
    const entry = calls.get(name) ?? { count: 0, inside: 0 };
    entry.count += 1;
    entry.inside += script.inside;
    calls.set(name, entry);
    script = undefined;
  };
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    const name = (args[0] ?? "").toLowerCase();
    if (source.startsWith("lua")) {
      lua += 1;
      if (script) {
        script.inside += 1;
        script.first ??= `${name} ${keyKind(args[1])}`;
      }
      return;
    }
    settle();
    client += 1;
    if (name === "evalsha" || name === "eval")
      script = { name: `${name}(${args[2]} keys)`, first: undefined, inside: 0 };
    else {
      const entry = calls.get(`${name} ${keyKind(args[1])}`) ?? { count: 0, inside: 0 };
      entry.count += 1;
      calls.set(`${name} ${keyKind(args[1])}`, entry);
    }
  });
  await fn();
  await pause(200);
  settle();
  monitor.disconnect();
  admin.disconnect();
  const lines = [...calls.entries()]
    .sort((a, b) => b[1].count - a[1].count)
    .map(
      ([name, { count, inside }]) =>
        `    ${(count / steps).toFixed(2).padStart(5)}  ${name}${inside ? ` (${(inside / count).toFixed(1)} inside)` : ""}`,
    );
  return [
    `${(client / steps).toFixed(2)} sent by clients, ${(lua / steps).toFixed(1)} inside scripts, per step:`,
    ...lines,
  ].join("\n");
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function row(
  workload: string,
  runs: number[],
  unit: string,
  target: string,
  ok?: (median: number) => boolean,
): BenchRow {
  const median = medianOf(runs);
  return { workload, median, runs, unit, target, ok: ok ? ok(median) : undefined };
}

/**
 * Starts a redis-server and 2 + 2 worker processes, runs the workloads three times (each round: raw BullMQ,
 * then tsworkflow, so both see the same machine load), stops everything, and returns the table's rows.
 */
export async function redisBenchmarks(): Promise<BenchRow[]> {
  const rounds = Number(process.env.BENCH_REDIS_ROUNDS ?? ROUNDS);
  const server: RedisServer = await startRedisServer();
  const tswWorkers: WorkerProcess[] = [];
  const rawWorkers: WorkerProcess[] = [];
  let runtime: RedisRuntime | undefined;
  let rawQueue: Queue<RawStep> | undefined;
  const client = new Redis(server.url);
  try {
    const started = await Promise.all([
      ...Array.from({ length: WORKERS }, (_, i) => startWorker("tsw", server.url, i + 1)),
      ...Array.from({ length: WORKERS }, (_, i) => startWorker("raw", server.url, i + 1)),
    ]);
    tswWorkers.push(...started.slice(0, WORKERS));
    rawWorkers.push(...started.slice(WORKERS));
    runtime = createRedisRuntime({ url: server.url, prefix: TSW_PREFIX });
    rawQueue = new Queue<RawStep>(RAW_QUEUE, { connection: client, prefix: `${RAW_PREFIX}bull` });
    const tsw = runtime;
    const raw = rawQueue;
    // CPU of everything that works for a batch: its workers, redis-server and this process (starts, polling).
    const selfCpuMs = () => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1000;
    };
    const cpuOf = async <T>(workers: WorkerProcess[], fn: () => Promise<T>) => {
      const selfBefore = selfCpuMs();
      const { value, cpuMs } = await cpuDuring(
        [...workers.map((worker) => worker.child.pid), server.process.pid],
        fn,
      );
      return { value, cpuMs: cpuMs + selfCpuMs() - selfBefore };
    };

    // Warm-up (JIT, connections, scripts loaded), not measured. Both sides need about five W1 rounds to reach
    // their steady state; then every other path runs once (a long run, a sleep), followed by W1 again: the first
    // timer's code paths make V8 deoptimize hot engine code, and the W1 round right after that ran at about half
    // speed (measured: 43–58 % of raw instead of 70–90 %).
    const w1Round = async () => {
      await tswBatch(tsw, 200);
      await rawChains(raw, client, 200, 10);
    };
    for (let round = 0; round < WARM_UP_ROUNDS; round += 1) await w1Round();
    await tswChain(tsw, 1000);
    await rawChains(raw, client, 1, 1000);
    await tswSleep(tsw);
    for (let round = 0; round < 2; round += 1) await w1Round();

    const rawW1: number[] = [];
    const tswW1: number[] = [];
    const ratios: number[] = [];
    const rawW2: number[] = [];
    const tswW2: number[] = [];
    const tswW3: number[] = [];
    const rawCpu: number[] = [];
    const tswCpu: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      const rawRound = await cpuOf(rawWorkers, () => rawChains(raw, client, 200, 10));
      const tswRound = await cpuOf(tswWorkers, () => tswBatch(tsw, 200));
      const rawSteps = 2000 / (rawRound.value / 1000);
      rawW1.push(rawSteps);
      tswW1.push(tswRound.value);
      ratios.push((tswRound.value / rawSteps) * 100);
      rawCpu.push((rawRound.cpuMs / 2000) * 1000);
      tswCpu.push((tswRound.cpuMs / 2000) * 1000);
      rawW2.push(await rawChains(raw, client, 1, 1000));
      tswW2.push(await tswChain(tsw, 1000));
      tswW3.push(await tswSleep(tsw));
    }

    const rows: BenchRow[] = [
      row("raw BullMQ 200 chains x 10 jobs", rawW1, "steps/s", "(baseline, same run)"),
      row("W1 200 runs x 10 steps", tswW1, "steps/s", ">= 1.5x raw BullMQ (issue 22)"),
      row("W1 / raw BullMQ (per round)", ratios, "%", ">= 150 %", (median) => median >= 150),
      row("raw BullMQ 1 chain x 1000 jobs", rawW2, "ms", "(baseline, same run)"),
      row("W2 1 run x 1000 steps", tswW2, "ms", "<= 1000 ms", (median) => median <= 1000),
      row("W3 resume after 2 s sleep", tswW3, "ms", "(no Redis target; core: <= 10 ms)"),
    ];
    // CPU time from /proc (Linux only).
    if (![...rawCpu, ...tswCpu].some(Number.isNaN)) {
      rows.push(
        row("raw BullMQ CPU per step", rawCpu, "us", "(its 2 workers + redis-server + this process)"),
        row("W1 CPU per step", tswCpu, "us", "(its 2 workers + redis-server + this process)"),
      );
    }

    if (process.env.BENCH_REDIS_PROFILE) {
      console.log("\nRedis commands per step under MONITOR (slower; not in the table):");
      console.log(
        `  raw BullMQ: ${await monitorPerStep(server.url, 2000, () => rawChains(raw, client, 200, 10))}`,
      );
      console.log(`  tsworkflow: ${await monitorPerStep(server.url, 2000, () => tswBatch(tsw, 200))}`);
    }
    return rows;
  } finally {
    await Promise.allSettled([...tswWorkers, ...rawWorkers].map((worker) => worker.stop()));
    await rawQueue?.close().catch(() => {});
    await runtime?.close().catch(() => {});
    client.disconnect();
    await server.stop();
  }
}
