import { afterAll, beforeAll } from "vitest";
import { BullMQQueue, type QueueConsumer } from "../../lib/adapters/redis/bullmq-queue.ts";
import { BullMQTimers } from "../../lib/adapters/redis/bullmq-timers.ts";
import type { ActivationTask, StepTask } from "../../lib/ports/task-queue.ts";
import { describeTaskQueueContract } from "../contract/task-queue-contract.ts";
import { describeTimersContract } from "../contract/timers-contract.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

let server: RedisServer;
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

/** A BullMQ queue on its own prefix, with a consumer that records every task. */
async function recordingQueue() {
  const queue = new BullMQQueue({ redis: server.url, prefix: `tsw-contract-${process.pid}-${++prefixes}:` });
  const activations: ActivationTask[] = [];
  const steps: StepTask[] = [];
  const consumer: QueueConsumer = await queue.consume(
    {
      activate: async (task) => {
        activations.push(structuredClone(task));
      },
      executeStep: async (task) => {
        steps.push(structuredClone(task));
      },
    },
    { concurrency: 5, runLockMs: 5_000, stalledAfterMs: 5_000 },
  );
  const close = async () => {
    await consumer.close();
    await queue.close();
  };
  return { queue, activations, steps, close };
}

describeTaskQueueContract("BullMQQueue on a real redis-server", {
  async create() {
    const { queue, activations, steps, close } = await recordingQueue();
    return {
      queue,
      delivered: async () => ({ activations: [...activations], steps: [...steps] }),
      close,
    };
  },
});

describeTimersContract("BullMQTimers on a real redis-server", {
  delayMs: 400,
  marginMs: 150,
  async create() {
    const { queue, activations, close } = await recordingQueue();
    return {
      timers: new BullMQTimers({ queue }),
      now: () => Date.now(),
      async advanceTo(time) {
        const wait = time - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        return [...activations];
      },
      close,
    };
  },
});
