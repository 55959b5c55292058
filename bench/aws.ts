/**
 * AWS on the emulators (see bench/run.ts; alone: `BENCH_ONLY=aws npm run bench`): W1 (200 runs × 10 steps)
 * and W2 (1 run × 10, 100 and 1,000 steps) through the real handlers (DynamoDB Local, fauxqs, the SQS
 * event source mapping of the test harness with Lambda's instance churn), with steps inline (the default)
 * and queued (`inlineSteps: false`). Each row prints the time, the AWS requests per step, the DynamoDB
 * read units per step (flat means reads do not grow with the run's history) and the dollars per million
 * steps at list prices (tests/aws/harness/prices.ts; Lambda duration as measured here, where DynamoDB
 * Local answers slower than DynamoDB). Then the dollars per million short sleeps (1 s, a delayed SQS
 * message), end to end with the Lambda duration measured: runs of sleeps less the same runs without, for
 * one run at a time (sparse) and 100 at once (batches). One round each: the emulators are slow.
 */
import { sleep } from "../lib/core/primitives.ts";
import { step } from "../lib/core/step.ts";
import { workflow } from "../lib/core/workflow.ts";
import { deployStack, type Emulators, type Stack, startEmulators } from "../tests/aws/harness/aws-stack.ts";
import { dollarsOf } from "../tests/aws/harness/prices.ts";
import type { BenchRow } from "./redis.ts";

const work = step("bench_aws_work", async (n: number) => n + 1);
const sequence = workflow("bench_aws_sequence", async (steps: number) => {
  let n = 0;
  for (let i = 0; i < steps; i += 1) n = await work(n);
  return n;
});

const naps = workflow("bench_aws_naps", async (sleeps: number) => {
  for (let i = 0; i < sleeps; i += 1) await sleep(1_000);
  return sleeps;
});

/** Starts `runs` runs of `workflow(units)`, waits for them, and measures what they used. */
async function measure(
  emulators: Emulators,
  inline: boolean,
  runs: number,
  units: number,
  name = sequence.name,
): Promise<{
  seconds: number;
  requestsPerStep: number;
  readUnitsPerStep: number;
  readUnits: number;
  writeUnits: number;
  dollarsPerMillion: number;
  dollars: number;
  lambdaMs: number;
}> {
  const stack: Stack = deployStack(
    emulators,
    { workflows: [sequence, naps] },
    { inlineSteps: inline, visibilityTimeoutSeconds: 120, functionTimeoutMs: 60_000 },
  );
  try {
    const began = performance.now();
    const started = await Promise.all(
      Array.from({ length: runs }, () => stack.invokeStart({ workflow: name, args: [units] })),
    );
    for (const { runId } of started) await stack.waitForStatus(runId, "completed", 600_000);
    const seconds = (performance.now() - began) / 1000;
    // The last document update is seen before its answer, with its capacity, reaches the counter.
    await stack.counter.settled();
    const counts = stack.counter.snapshot();
    const total = runs * units;
    const requests = Object.values(counts.requests).reduce((sum, count) => sum + count, 0);
    const mappings = [stack.workflowMapping.stats, stack.stepMapping.stats];
    const lambdaMs = mappings.reduce((sum, stats) => sum + stats.durationMs, 0);
    const dollars = dollarsOf({
      counts,
      pollRequests: {
        fifo: stack.workflowMapping.stats.invocations + stack.workflowMapping.stats.deleteRequests,
        standard: stack.stepMapping.stats.invocations + stack.stepMapping.stats.deleteRequests,
      },
      lambdaInvocations: mappings.reduce((sum, stats) => sum + stats.invocations, 0),
      lambdaMs,
      memoryMb: 512,
      schedulerInvocations: 0,
    });
    return {
      seconds,
      requestsPerStep: requests / total,
      readUnitsPerStep: (counts.readUnits + counts.emptyReadUnits) / total,
      // As billed: an empty read is 1 RRU (0.5 eventually consistent), a failed conditional write 1 WRU (see `dollarsOf`).
      readUnits: counts.readUnits + counts.emptyReadUnits,
      writeUnits: counts.writeUnits + counts.failedWrites,
      dollarsPerMillion: (dollars / total) * 1e6,
      dollars,
      lambdaMs,
    };
  } finally {
    await stack.stop();
  }
}

export async function awsBenchmarks(): Promise<BenchRow[]> {
  const emulators = await startEmulators("tsworkflow-bench");
  const rows: BenchRow[] = [];
  try {
    // Warm-up, not measured: JIT, connections, the emulators' own warm-up.
    await measure(emulators, true, 5, 10);
    for (const inline of [true, false]) {
      const mode = inline ? "inline" : "queued";
      for (const [runs, steps] of [
        [200, 10],
        [1, 10],
        [1, 100],
        [1, 1000],
      ] as const) {
        const result = await measure(emulators, inline, runs, steps);
        rows.push({
          workload: `${runs === 1 ? "W2" : "W1"} ${runs} run${runs === 1 ? "" : "s"} x ${steps} steps, ${mode}`,
          median: (runs * steps) / result.seconds,
          runs: [(runs * steps) / result.seconds],
          unit: "steps/s",
          target: `${result.requestsPerStep.toFixed(1)} requests, ${(result.writeUnits / (runs * steps)).toFixed(2)} WRU, ${result.readUnitsPerStep.toFixed(2)} RRU per step; $${result.dollarsPerMillion.toFixed(2)} per million steps`,
          ok: undefined,
        });
      }
    }
    for (const [runs, sleeps] of [
      [1, 10],
      [100, 4],
    ] as const) {
      const without = await measure(emulators, true, runs, 0, naps.name);
      const result = await measure(emulators, true, runs, sleeps, naps.name);
      const perSleep = ((result.dollars - without.dollars) / (runs * sleeps)) * 1e6;
      const lambdaMs = (result.lambdaMs - without.lambdaMs) / (runs * sleeps);
      const units = (kind: "readUnits" | "writeUnits") => (result[kind] - without[kind]) / (runs * sleeps);
      rows.push({
        workload: `${runs} run${runs === 1 ? "" : "s"} x ${sleeps} short sleeps (1 s)`,
        median: (runs * sleeps) / result.seconds,
        runs: [(runs * sleeps) / result.seconds],
        unit: "sleeps/s",
        target: `$${perSleep.toFixed(2)} per million sleeps (goal $3.00): ${units("writeUnits").toFixed(1)} WRU, ${units("readUnits").toFixed(1)} RRU, ${lambdaMs.toFixed(0)} ms of Lambda each`,
        ok: perSleep <= 3,
      });
    }
  } finally {
    await emulators.stop();
  }
  return rows;
}
