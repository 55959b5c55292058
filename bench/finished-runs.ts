/**
 * `BENCH_ONLY=files npm run bench`: what finished runs cost the file backend.
 * M1 = heap kept per 1,000 runs completed in one process (after a full GC), beside MemoryStorage, which
 * keeps every event of every run as the file backend did before; M2 = reopening a directory of
 * 10,000 finished runs (time to the first page of listRuns, and heap), beside reading every run file as
 * the open did before.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { configureLogging, type EventStore, step, workflow } from "tsworkflow";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import type { BenchRow as Row } from "./redis.ts";

configureLogging({ level: "error" });
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const RUNS = Number(process.env.BENCH_FILES_RUNS ?? 10_000);

const stamp = step("bench_stamp", async (order: number) => ({ order, at: "2026-01-01T00:00:00.000Z" }));
const finishing = workflow("bench_finishing", async (order: number) => {
  const first = await stamp(order);
  const second = await stamp(order + 1);
  return { first, second };
});

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

/** Completes `RUNS` runs in one runtime; returns the heap kept per 1,000 of them. */
async function heapPerThousand(storage: EventStore): Promise<number> {
  const runtime = new LocalRuntime({ storage });
  try {
    const batch = 500;
    const finish = async (count: number) => {
      for (let done = 0; done < count; done += batch) {
        const started = await Promise.all(
          Array.from({ length: batch }, (_, n) => runtime.start(finishing, [done + n])),
        );
        await Promise.all(started.map(({ runId }) => runtime.waitForRun(runId)));
      }
      // Let the last syncs (and the moves of finished runs out of memory) happen.
      await new Promise((resolve) => setTimeout(resolve, 200));
    };
    // The first runs fill the bounded cache of finished runs; the slope after them is what keeps growing.
    await finish(2000);
    const before = heapMb();
    await finish(RUNS - 2000);
    return ((heapMb() - before) / (RUNS - 2000)) * 1000;
  } finally {
    await runtime.close();
  }
}

async function reopen(dir: string): Promise<{ ms: number; mb: number }> {
  const before = heapMb();
  const started = performance.now();
  const storage = new FileStorage({ dir });
  await storage.listRuns({ limit: 50 });
  const ms = performance.now() - started;
  const mb = heapMb() - before;
  await storage.close();
  return { ms, mb };
}

/** What the open did before: read and parse every run file. */
function readEveryFile(dir: string): { ms: number; mb: number } {
  const before = heapMb();
  const started = performance.now();
  const kept: unknown[] = [];
  for (const name of readdirSync(join(dir, "runs")))
    kept.push(
      readFileSync(join(dir, "runs", name), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
    );
  const ms = performance.now() - started;
  const mb = heapMb() - before;
  kept.length = 0;
  return { ms, mb };
}

export async function finishedRunsBenchmarks(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "tsw-bench-files-"));
  try {
    const memory = await heapPerThousand(new MemoryStorage());
    const file = await heapPerThousand(new FileStorage({ dir }));
    const opened = await reopen(dir);
    const everything = readEveryFile(dir);
    const one = (value: number) => ({ median: value, runs: [value] });
    return [
      {
        workload: "M1 heap per 1,000 finished runs, MemoryStorage (all kept)",
        ...one(memory),
        unit: "MB",
        target: "(baseline)",
        ok: undefined,
      },
      {
        workload: "M1 heap per 1,000 finished runs, FileStorage",
        ...one(file),
        unit: "MB",
        target: "<= 1 MB",
        ok: file <= 1,
      },
      {
        workload: `M2 reopen ${RUNS} finished runs: first page`,
        ...one(opened.ms),
        unit: "ms",
        target: `< reading every file (${everything.ms.toFixed(0)} ms)`,
        ok: opened.ms < everything.ms,
      },
      {
        workload: `M2 reopen ${RUNS} finished runs: heap`,
        ...one(opened.mb),
        unit: "MB",
        target: `< reading every file (${everything.mb.toFixed(0)} MB)`,
        ok: opened.mb < everything.mb,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
