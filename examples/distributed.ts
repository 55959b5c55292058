/**
 * Redis mode, distributed: three worker processes share twenty runs of an order pipeline, and a table shows
 * which worker ran which step.
 *
 *   npx tsx examples/distributed.ts                 # starts a throwaway redis-server (apt-get install redis-server)
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/distributed.ts
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/distributed.ts --workers 0   # use workers already running
 *                                                   # (e.g. local/docker-compose.yml) on the default prefix
 *
 * This file is also the workers' workflows file: each worker imports it to register the workflow, and the
 * main function below only runs when the file is executed directly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { getStepInfo } from "../lib/core/context.ts";
import { step } from "../lib/core/step.ts";
import { workflow } from "../lib/core/workflow.ts";
import { startRedisServer } from "../lib/redis/redis-server.ts";
import { createRedisRuntime } from "../lib/runtimes/redis.ts";

/** Who ran a step: the worker id `tsworkflow worker` sets, and the process id. */
const ranBy = () => ({ worker: process.env.TSWORKFLOW_WORKER_ID ?? "main", pid: process.pid });
const busy = (ms: number) => new Promise((done) => setTimeout(done, ms));

const reserveStock = step("reserve_stock", async (orderId: string) => {
  await busy(20);
  return { orderId, reserved: true, ...ranBy() };
});
const chargeCard = step("charge_card", async (orderId: string, cents: number) => {
  await busy(30);
  // The step id is stable across attempts: pass it downstream as the payment's idempotency key.
  return { orderId, cents, paymentKey: getStepInfo()?.idempotencyKey, ...ranBy() };
});
const sendReceipt = step("send_receipt", async (orderId: string) => {
  await busy(10);
  return { orderId, sent: true, ...ranBy() };
});
const ship = step("ship", async (orderId: string) => {
  await busy(20);
  return { orderId, tracking: `TRK-${orderId}`, ...ranBy() };
});

export const orderPipeline = workflow("order_pipeline", async (orderId: string, cents: number) => {
  const reserved = await reserveStock(orderId);
  const [charged, receipt] = await Promise.all([chargeCard(orderId, cents), sendReceipt(orderId)]);
  const shipped = await ship(orderId);
  return {
    tracking: shipped.tracking,
    ranBy: [reserved.worker, charged.worker, receipt.worker, shipped.worker],
  };
});

export interface DistributedSummary {
  /** One row per run: the worker that ran each step. */
  rows: { runId: string; status: string; steps: Record<string, string> }[];
  /** Steps run per worker. */
  perWorker: Record<string, number>;
}

/** Options of {@link runDistributedExample}. */
export interface DistributedOptions {
  /** @default a throwaway redis-server started here */
  url?: string;
  /** @default 20 */
  runs?: number;
  /** Worker processes to start here; 0 uses workers already running on `url` and `prefix`. @default 3 */
  workers?: number;
  /** @default "tsw:" with `workers: 0`, else a prefix of its own */
  prefix?: string;
}

/** Starts `workers` worker processes and `runs` runs, waits for them, and returns who ran what. */
export async function runDistributedExample(options: DistributedOptions = {}): Promise<DistributedSummary> {
  const server = options.url ? undefined : await startRedisServer();
  const url = options.url ?? (server?.url as string);
  const workerCount = options.workers ?? 3;
  const prefix = options.prefix ?? (workerCount === 0 ? "tsw:" : `example-${process.pid}-${Date.now()}:`);
  const here = fileURLToPath(import.meta.url);
  const root = resolve(here, "../..");
  /** The worker processes, with the pid each logs when it starts. */
  const children: { child: ChildProcess; pid?: number }[] = [];
  const client = createRedisRuntime({ url, prefix });
  try {
    // Worker processes, as `tsworkflow worker --redis URL --workflows examples/distributed.ts` would start.
    const ready = Array.from({ length: workerCount }, (_, i) => {
      const workerId = `worker-${i + 1}`;
      // `node --import tsx` is what `npx tsx` runs, without the npm and tsx processes in between.
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "lib/runtimes/redis-worker.ts",
          "--redis",
          url,
          "--workflows",
          here,
          "--prefix",
          prefix,
          "--worker-id",
          workerId,
          "--concurrency",
          "4",
        ],
        { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
      );
      const entry: { child: ChildProcess; pid?: number } = { child };
      children.push(entry);
      return new Promise<void>((started, failed) => {
        let output = "";
        child.stdout?.on("data", (chunk: Buffer) => {
          output += chunk.toString();
          const pid = new RegExp(`worker ${workerId} started.*?pid=(\\d+)`).exec(output)?.[1];
          if (pid && entry.pid === undefined) {
            entry.pid = Number(pid);
            started();
          }
        });
        child.once("exit", (code) => failed(new Error(`${workerId} exited with ${code}:\n${output}`)));
      });
    });
    await Promise.all(ready);

    const runIds = await Promise.all(
      Array.from({ length: options.runs ?? 20 }, (_, i) =>
        client.start(orderPipeline, [`order-${i + 1}`, 1000 + i]).then((r) => r.runId),
      ),
    );
    const rows: DistributedSummary["rows"] = [];
    const perWorker: Record<string, number> = {};
    for (const runId of runIds) {
      const run = await client.waitForRun(runId, { timeoutMs: 60_000 });
      const steps: Record<string, string> = {};
      for (const event of await client.getEvents(runId)) {
        if (event.type !== "step_completed") continue;
        const worker = (event.result as { worker: string }).worker;
        steps[event.stepName] = worker;
        perWorker[worker] = (perWorker[worker] ?? 0) + 1;
      }
      rows.push({ runId, status: run.status, steps });
    }
    return { rows, perWorker };
  } finally {
    await client.close();
    // SIGTERM: each worker finishes its steps in flight, then exits.
    await Promise.all(
      children.map(
        ({ child, pid }) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once("exit", () => done());
            if (pid === undefined) child.kill("SIGTERM");
            else process.kill(pid, "SIGTERM");
          }),
      ),
    );
    await server?.stop();
  }
}

function printSummary({ rows, perWorker }: DistributedSummary): void {
  const columns = ["reserve_stock", "charge_card", "send_receipt", "ship"];
  const table = rows.map((row) => ({
    run: row.runId,
    status: row.status,
    ...Object.fromEntries(columns.map((c) => [c, row.steps[c] ?? "-"])),
  }));
  console.table(table);
  console.table(Object.entries(perWorker).map(([worker, steps]) => ({ worker, steps })));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const flag = (name: string) => {
    const index = process.argv.indexOf(`--${name}`);
    return index === -1 ? undefined : Number(process.argv[index + 1]);
  };
  const workers = flag("workers");
  const runs = flag("runs");
  runDistributedExample({
    ...(process.env.REDIS_URL ? { url: process.env.REDIS_URL } : {}),
    ...(workers === undefined ? {} : { workers }),
    ...(runs === undefined ? {} : { runs }),
  }).then(printSummary, (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
