/**
 * `npm run bench`: each workload three times, the median printed beside its target.
 * Set BENCH_ONLY=core (or redis, load, files, flow, cold-start, aws) to run one group.
 */
import { w1, w1WithCpu, w2, w3 } from "./core.ts";
import type { BenchRow as Row } from "./redis.ts";

async function median(times: number, fn: () => Promise<number>): Promise<{ median: number; runs: number[] }> {
  const runs: number[] = [];
  for (let i = 0; i < times; i += 1) runs.push(await fn());
  const sorted = [...runs].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)] as number, runs };
}

function print(title: string, rows: Row[]): void {
  console.log(`\n${title}`);
  const header = ["workload", "median", "runs", "target", ""];
  const table = rows.map((row) => [
    row.workload,
    `${row.median.toFixed(row.median >= 100 ? 0 : 1)} ${row.unit}`,
    row.runs.map((value) => value.toFixed(value >= 100 ? 0 : 1)).join(" / "),
    row.target,
    row.ok === undefined ? "" : row.ok ? "ok" : "MISSED",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? "").length)));
  for (const line of [header, ...table])
    console.log(line.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  "));
}

export async function coreBenchmarks(): Promise<Row[]> {
  const rows: Row[] = [];
  // The peer baseline: raw BullMQ's W1 (as in the Redis group: redis-server, 2 worker processes with
  // concurrency 50), each round just before the embedded W1 round, so both see the same machine load.
  const { startRawBaseline } = await import("./redis.ts");
  const raw = await startRawBaseline();
  const cpu: number[] = [];
  const rawW1: number[] = [];
  const ratios: number[] = [];
  const memoryRatios: number[] = [];
  let first: { median: number; runs: number[] };
  try {
    // Warm-up, not measured: the first rounds pay for loading modules and JIT-compiling the engine (W1 takes
    // about five rounds to reach its steady state here; so does raw BullMQ).
    for (let round = 0; round < 5; round += 1) {
      await raw.w1();
      await w1();
      await w1WithCpu("memory");
    }
    await w2(1000);
    first = await median(3, async () => {
      const rawSteps = await raw.w1();
      const round = await w1WithCpu();
      const memory = await w1WithCpu("memory");
      rawW1.push(rawSteps);
      ratios.push((round.stepsPerSecond / rawSteps) * 100);
      memoryRatios.push((memory.stepsPerSecond / rawSteps) * 100);
      cpu.push(round.cpuMicrosPerStep);
      return round.stepsPerSecond;
    });
  } finally {
    await raw.stop();
  }
  const medianOf = (values: number[]) => [...values].sort((a, b) => a - b)[1] as number;
  rows.push({
    workload: "raw BullMQ 200 chains x 10 jobs",
    median: medianOf(rawW1),
    runs: rawW1,
    unit: "steps/s",
    target: "(peer baseline, same run)",
    ok: undefined,
  });
  rows.push({
    workload: "W1 200 runs x 10 steps",
    ...first,
    unit: "steps/s",
    target: ">= 4000 steps/s",
    ok: first.median >= 4000,
  });
  rows.push({
    workload: "W1 / raw BullMQ (per round)",
    median: medianOf(ratios),
    runs: ratios,
    unit: "%",
    target: ">= 150 %",
    ok: medianOf(ratios) >= 150,
  });
  rows.push({
    workload: "W1 on MemoryStorage / raw BullMQ",
    median: medianOf(memoryRatios),
    runs: memoryRatios,
    unit: "%",
    target: "(the engine without file I/O: a ceiling)",
    ok: undefined,
  });
  rows.push({
    workload: "W1 CPU per step",
    median: medianOf(cpu),
    runs: cpu,
    unit: "us",
    target: "(this process, its fdatasync threads included)",
    ok: undefined,
  });
  for (const count of [100, 1000, 5000]) {
    const result = await median(3, () => w2(count));
    const targeted = count === 1000;
    rows.push({
      workload: `W2 1 run x ${count} steps`,
      ...result,
      unit: "ms",
      target: targeted ? "<= 500 ms" : `(${(result.median / count).toFixed(3)} ms/step)`,
      ok: targeted ? result.median <= 500 : undefined,
    });
  }
  const third = await median(3, w3);
  rows.push({
    workload: "W3 resume after 2 s sleep",
    ...third,
    unit: "ms",
    target: "<= 10 ms",
    ok: third.median <= 10,
  });
  return rows;
}

const only = process.env.BENCH_ONLY;
if (!only || only === "core") {
  print(
    "Core engine, embedded file backend (real fdatasync), beside raw BullMQ in the same run, median of 3",
    await coreBenchmarks(),
  );
}
if (!only || only === "redis") {
  const { redisBenchmarks } = await import("./redis.ts");
  print(
    `Redis mode, 2 worker processes x concurrency 50, beside raw BullMQ in the same run, median of ${process.env.BENCH_REDIS_ROUNDS ?? 3}`,
    await redisBenchmarks(),
  );
}
if (!only || only === "load") await (await import("./load.ts")).loadBenchmarks();
if (!only || only === "files") {
  const { finishedRunsBenchmarks } = await import("./finished-runs.ts");
  print(
    "Finished runs on the file backend (memory kept, reopening a directory)",
    await finishedRunsBenchmarks(),
  );
}
if (!only || only === "flow") {
  const { flowBenchmarks } = await import("./flow.ts");
  print("Flow control, embedded file backend, median of 3 (rounds alternate)", await flowBenchmarks());
}
if (!only || only === "cold-start") {
  const { coldStartBenchmarks, COLD_START_PROCESSES } = await import("./cold-start.ts");
  const rows = await coldStartBenchmarks();
  print(
    `Lambda cold start: import of each bundle in ${COLD_START_PROCESSES} fresh node processes, median`,
    rows,
  );
}
if (!only || only === "aws") {
  const { awsBenchmarks } = await import("./aws.ts");
  print(
    "AWS on the emulators (real handlers, DynamoDB Local, fauxqs, instance churn 30 %), one round each",
    await awsBenchmarks(),
  );
}
