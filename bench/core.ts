/**
 * Core benchmarks on the embedded file backend with its real fsync (see bench/run.ts):
 * W1 = 200 runs of 10 sequential steps started together, W2 = one run of N sequential steps,
 * W3 = resume overhead of a 2 s sleep (wall time minus 2 s).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, sleep, step, workflow } from "tsworkflow";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";

configureLogging({ level: "error" });

const increment = step("bench_increment", async (n: number) => n + 1);

export const tenSteps = workflow("bench_ten_steps", async () => {
  let n = 0;
  for (let i = 0; i < 10; i += 1) n = await increment(n);
  return n;
});

export const manySteps = workflow("bench_many_steps", async (count: number) => {
  let n = 0;
  for (let i = 0; i < count; i += 1) n = await increment(n);
  return n;
});

export const sleepy = workflow("bench_sleep", async () => {
  await sleep("2s");
  return "woke";
});

/** Where W1 keeps its runs: the file backend, or memory (the engine alone, no file I/O: a ceiling). */
export type BenchStorage = "file" | "memory";

async function withRuntime<T>(
  fn: (runtime: LocalRuntime) => Promise<T>,
  storage: BenchStorage = "file",
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "tsw-bench-"));
  const runtime = new LocalRuntime({
    storage: storage === "file" ? new FileStorage({ dir }) : new MemoryStorage(),
  });
  try {
    return await fn(runtime);
  } finally {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** W1: steps per second over 200 runs × 10 steps started together. */
export async function w1(): Promise<number> {
  return (await w1WithCpu()).stepsPerSecond;
}

/**
 * W1, with the CPU time this process used per step meanwhile (its threads included: the fdatasyncs), which
 * a busy machine changes less than the steps per second.
 */
export function w1WithCpu(
  storage: BenchStorage = "file",
): Promise<{ stepsPerSecond: number; cpuMicrosPerStep: number }> {
  return withRuntime(async (runtime) => {
    const began = performance.now();
    const cpuBefore = process.cpuUsage();
    const ids = await Promise.all(Array.from({ length: 200 }, () => runtime.start(tenSteps, [])));
    const runs = await Promise.all(ids.map(({ runId }) => runtime.waitForRun(runId)));
    const seconds = (performance.now() - began) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    if (runs.some((run) => run.status !== "completed" || run.result !== 10))
      throw new Error("W1: a run did not complete");
    return { stepsPerSecond: 2000 / seconds, cpuMicrosPerStep: (cpu.user + cpu.system) / 2000 };
  }, storage);
}

/** W2: milliseconds for one run of `count` sequential steps. */
export function w2(count: number): Promise<number> {
  return withRuntime(async (runtime) => {
    const began = performance.now();
    const { runId } = await runtime.start(manySteps, [count]);
    const run = await runtime.waitForRun(runId);
    const ms = performance.now() - began;
    if (run.status !== "completed" || run.result !== count)
      throw new Error(`W2: the run ended ${run.status}`);
    return ms;
  });
}

/** W3: milliseconds a 2 s sleep adds beyond its 2 s. */
export function w3(): Promise<number> {
  return withRuntime(async (runtime) => {
    const began = performance.now();
    const { runId } = await runtime.start(sleepy, []);
    const run = await runtime.waitForRun(runId);
    const ms = performance.now() - began - 2000;
    if (run.status !== "completed") throw new Error(`W3: the run ended ${run.status}`);
    return ms;
  });
}
