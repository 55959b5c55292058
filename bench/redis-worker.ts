/**
 * A worker process for the Redis benchmarks (bench/redis.ts starts two of each kind):
 *
 *   node --import tsx bench/redis-worker.ts tsw <redis-url> <prefix> <worker-id> <concurrency>
 *     `tsworkflow worker` (runWorker) on the benchmark workflows of bench/core.ts.
 *   node --import tsx bench/redis-worker.ts raw <redis-url> <prefix> <worker-id> <concurrency>
 *     Raw BullMQ: one job per step; a job enqueues the next job of its chain, the last one counts the chain
 *     as done (INCR <prefix>done:<batch>).
 *
 * Prints "ready" once its workers are connected; SIGTERM drains the jobs in flight and exits.
 */
import { fileURLToPath } from "node:url";
import { type Job, Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { configureLogging } from "tsworkflow";
import { runWorker } from "tsworkflow/redis";
import { RAW_QUEUE, type RawStep } from "./redis.ts";

const [mode, url, prefix, workerId, concurrencyArg] = process.argv.slice(2);
if (!mode || !url || !prefix || !workerId || !concurrencyArg || (mode !== "tsw" && mode !== "raw")) {
  console.error("usage: bench/redis-worker.ts tsw|raw <redis-url> <prefix> <worker-id> <concurrency>");
  process.exit(2);
}
const concurrency = Number(concurrencyArg);
configureLogging({ level: "error" });

if (mode === "tsw") {
  const worker = await runWorker({
    redis: url,
    workflows: fileURLToPath(new URL("./core.ts", import.meta.url)),
    prefix,
    workerId,
    concurrency,
  });
  console.log("ready");
  await worker.stopped;
} else {
  const client = new Redis(url, { maxRetriesPerRequest: null });
  const blocking = new Redis(url, { maxRetriesPerRequest: null });
  const options = { connection: client, prefix: `${prefix}bull` };
  const queue = new Queue<RawStep>(RAW_QUEUE, options);
  const worker = new Worker<RawStep>(
    RAW_QUEUE,
    async (job: Job<RawStep>) => {
      const { batch, index, length, n } = job.data;
      const next = n + 1;
      if (index + 1 < length) {
        await queue.add(
          "step",
          { batch, index: index + 1, length, n: next },
          { removeOnComplete: true, removeOnFail: true },
        );
      } else {
        await client.incr(`${prefix}done:${batch}`);
      }
      return next;
    },
    { connection: blocking, prefix: `${prefix}bull`, concurrency, name: workerId },
  );
  worker.on("error", (error) => console.error(`raw worker ${workerId}: ${error.message}`));
  await worker.waitUntilReady();
  console.log("ready");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await worker.close();
  await queue.close();
  await Promise.all([client.quit(), blocking.quit()]);
}
