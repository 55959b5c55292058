/**
 * Flow control (see bench/run.ts; alone: `BENCH_ONLY=flow npm run bench`): W1 (200 runs × 10 steps on the
 * embedded file backend) whose step has a concurrency limit of 20, beside the same W1 without a limit, in
 * the same run; each step counts how many copies of itself run at once, and the highest count is printed.
 * Rate limits (issue 16) are not implemented yet: no row for them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { step, workflow } from "tsworkflow";
import { FileStorage, LocalRuntime } from "tsworkflow/local";
import type { BenchRow } from "./redis.ts";

let running = 0;
let highest = 0;
/** A step that takes a moment (a downstream call), counting its copies at once. */
async function call(n: number): Promise<number> {
  running += 1;
  highest = Math.max(highest, running);
  await new Promise((resolve) => setImmediate(resolve));
  running -= 1;
  return n + 1;
}

const free = step("bench_flow_free", call);
const limited = step("bench_flow_limited", call, { concurrency: { limit: 20 } });
const roomy = step("bench_flow_roomy", call, { concurrency: { limit: 1000 } });
const freeRun = workflow("bench_flow_free_run", async () => {
  let n = 0;
  for (let i = 0; i < 10; i += 1) n = await free(n);
  return n;
});
const limitedRun = workflow("bench_flow_limited_run", async () => {
  let n = 0;
  for (let i = 0; i < 10; i += 1) n = await limited(n);
  return n;
});
const roomyRun = workflow("bench_flow_roomy_run", async () => {
  let n = 0;
  for (let i = 0; i < 10; i += 1) n = await roomy(n);
  return n;
});

/** Steps per second of W1 with `definition`, and the most copies of its step that ran at once. */
async function w1(definition: typeof freeRun): Promise<{ stepsPerSecond: number; highest: number }> {
  const dir = mkdtempSync(join(tmpdir(), "tsw-bench-flow-"));
  const runtime = new LocalRuntime({ storage: new FileStorage({ dir }) });
  running = 0;
  highest = 0;
  try {
    const began = performance.now();
    const ids = await Promise.all(Array.from({ length: 200 }, () => runtime.start(definition, [])));
    const runs = await Promise.all(ids.map(({ runId }) => runtime.waitForRun(runId)));
    if (runs.some((run) => run.status !== "completed" || run.result !== 10))
      throw new Error("W1: a run did not complete");
    return { stepsPerSecond: 2000 / ((performance.now() - began) / 1000), highest };
  } finally {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function flowBenchmarks(): Promise<BenchRow[]> {
  // Warm-up, not measured.
  for (const definition of [freeRun, limitedRun, roomyRun]) await w1(definition);
  const rounds = {
    free: [] as number[],
    limited: [] as number[],
    roomy: [] as number[],
    freeMax: 0,
    limitedMax: 0,
  };
  for (let round = 0; round < 3; round += 1) {
    const a = await w1(freeRun);
    const b = await w1(limitedRun);
    const c = await w1(roomyRun);
    rounds.free.push(a.stepsPerSecond);
    rounds.limited.push(b.stepsPerSecond);
    rounds.roomy.push(c.stepsPerSecond);
    rounds.freeMax = Math.max(rounds.freeMax, a.highest);
    rounds.limitedMax = Math.max(rounds.limitedMax, b.highest);
  }
  const median = (values: number[]) => [...values].sort((x, y) => x - y)[1] as number;
  const free = median(rounds.free);
  const limited = median(rounds.limited);
  const roomy = median(rounds.roomy);
  return [
    {
      workload: `W1 without a limit (at most ${rounds.freeMax} steps at once)`,
      median: free,
      runs: rounds.free,
      unit: "steps/s",
      target: "baseline",
      ok: undefined,
    },
    {
      workload: "W1, step concurrency limit 1000 (never reached)",
      median: roomy,
      runs: rounds.roomy,
      unit: "steps/s",
      target: `the cost of a limit: ${((roomy / free) * 100).toFixed(0)} % of the baseline`,
      ok: undefined,
    },
    {
      workload: `W1, step concurrency limit 20 (at most ${rounds.limitedMax} at once)`,
      median: limited,
      runs: rounds.limited,
      unit: "steps/s",
      target: `limit never exceeded; ${((limited / free) * 100).toFixed(0)} % of the baseline`,
      ok: rounds.limitedMax <= 20,
    },
  ];
}
