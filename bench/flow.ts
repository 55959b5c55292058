/**
 * Flow control (see bench/run.ts; alone: `BENCH_ONLY=flow npm run bench`): W1 (200 runs × 10 steps on the
 * embedded file backend) whose step has a concurrency limit of 20, beside the same W1 without a limit, in
 * the same run; each step counts how many copies of itself run at once, and the highest count is printed.
 * Beside them: W1 under a step rate limit of 500 per second (the most starts seen in any second is
 * printed), and limits that are never reached (step concurrency 1000, step rate 1,000,000 per second, run
 * concurrency 1000), whose cost against the baseline is the overhead of declaring a limit.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { step, workflow } from "tsworkflow";
import { FileStorage, LocalRuntime } from "tsworkflow/local";
import { mostInAWindow } from "../tests/support/windows.ts";
import type { BenchRow } from "./redis.ts";

let running = 0;
let highest = 0;
let starts: number[] = [];
/** A step that takes a moment (a downstream call), counting its copies at once. */
async function call(n: number): Promise<number> {
  starts.push(Date.now());
  running += 1;
  highest = Math.max(highest, running);
  await new Promise((resolve) => setImmediate(resolve));
  running -= 1;
  return n + 1;
}

const free = step("bench_flow_free", call);
const limited = step("bench_flow_limited", call, { concurrency: { limit: 20 } });
const roomy = step("bench_flow_roomy", call, { concurrency: { limit: 1000 } });
const rated = step("bench_flow_rated", call, { rateLimit: { limit: 500, period: "1s" } });
const roomyRate = step("bench_flow_roomy_rate", call, { rateLimit: { limit: 1_000_000, period: "1s" } });
/** W1: ten steps one after the other. */
const tenOf = (name: string, each: (n: number) => Promise<number>, options = {}) =>
  workflow(
    name,
    async () => {
      let n = 0;
      for (let i = 0; i < 10; i += 1) n = await each(n);
      return n;
    },
    options,
  );
const freeRun = tenOf("bench_flow_free_run", free);
const limitedRun = tenOf("bench_flow_limited_run", limited);
const roomyRun = tenOf("bench_flow_roomy_run", roomy);
const ratedRun = tenOf("bench_flow_rated_run", rated);
const roomyRateRun = tenOf("bench_flow_roomy_rate_run", roomyRate);
const roomyRunsRun = tenOf("bench_flow_roomy_runs_run", free, { concurrency: { limit: 1000 } });
/** Steps per second of W1 with `definition`, and the most copies of its step that ran at once. */
async function w1(
  definition: typeof freeRun,
): Promise<{ stepsPerSecond: number; highest: number; mostPerSecond: number }> {
  const dir = mkdtempSync(join(tmpdir(), "tsw-bench-flow-"));
  const runtime = new LocalRuntime({ storage: new FileStorage({ dir }) });
  running = 0;
  highest = 0;
  starts = [];
  try {
    const began = performance.now();
    const ids = await Promise.all(Array.from({ length: 200 }, () => runtime.start(definition, [])));
    const runs = await Promise.all(ids.map(({ runId }) => runtime.waitForRun(runId)));
    if (runs.some((run) => run.status !== "completed" || run.result !== 10))
      throw new Error("W1: a run did not complete");
    return {
      stepsPerSecond: 2000 / ((performance.now() - began) / 1000),
      highest,
      mostPerSecond: mostInAWindow(starts, 1000),
    };
  } finally {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function flowBenchmarks(): Promise<BenchRow[]> {
  const workloads = {
    free: freeRun,
    roomy: roomyRun,
    limited: limitedRun,
    roomyRate: roomyRateRun,
    rated: ratedRun,
    roomyRuns: roomyRunsRun,
  };
  type Name = keyof typeof workloads;
  const names = Object.keys(workloads) as Name[];
  // Warm-up, not measured.
  for (const name of names) await w1(workloads[name]);
  const rounds = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  const most = Object.fromEntries(names.map((name) => [name, 0])) as Record<Name, number>;
  let mostPerSecond = 0;
  for (let round = 0; round < 3; round += 1) {
    for (const name of names) {
      const result = await w1(workloads[name]);
      rounds[name].push(result.stepsPerSecond);
      most[name] = Math.max(most[name], result.highest);
      if (name === "rated") mostPerSecond = Math.max(mostPerSecond, result.mostPerSecond);
    }
  }
  const median = (values: number[]) => [...values].sort((x, y) => x - y)[1] as number;
  const free = median(rounds.free);
  const share = (name: Name) => `${((median(rounds[name]) / free) * 100).toFixed(0)} % of the baseline`;
  const row = (name: Name, workload: string, target: string, ok: boolean | undefined): BenchRow => ({
    workload,
    median: median(rounds[name]),
    runs: rounds[name],
    unit: "steps/s",
    target,
    ok,
  });
  return [
    row("free", `W1 without a limit (at most ${most.free} steps at once)`, "baseline", undefined),
    row(
      "roomy",
      "W1, step concurrency limit 1000 (never reached)",
      `the cost of a limit: ${share("roomy")}`,
      undefined,
    ),
    row(
      "limited",
      `W1, step concurrency limit 20 (at most ${most.limited} at once)`,
      `limit never exceeded; ${share("limited")}`,
      most.limited <= 20,
    ),
    row(
      "roomyRate",
      "W1, step rate limit 1,000,000/s (never reached)",
      `the cost of a rate limit: ${share("roomyRate")}`,
      undefined,
    ),
    row(
      "rated",
      `W1, step rate limit 500/s (at most ${mostPerSecond} starts in any second)`,
      `limit never exceeded; ${share("rated")}`,
      mostPerSecond <= 500,
    ),
    row(
      "roomyRuns",
      "W1, run concurrency limit 1000 (never reached)",
      `the cost of a run limit: ${share("roomyRuns")}`,
      undefined,
    ),
  ];
}
