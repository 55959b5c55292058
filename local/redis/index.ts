/** Redis mode: RedisStorage, the BullMQ queue and timers, the runtime and the worker. Loads ioredis and BullMQ. */

export type { BullMQQueueOptions, ConsumeOptions, QueueConsumer, QueueHandlers } from "./bullmq-queue.ts";
export { BullMQQueue, defaultWorkerId, stepJobId } from "./bullmq-queue.ts";
export type { BullMQTimersOptions } from "./bullmq-timers.ts";
export { BullMQTimers, timerDeduplicationId } from "./bullmq-timers.ts";
export { RedisUnavailableError, redactUrl } from "./connection.ts";
export type { RedisRuntime, RedisRuntimeOptions, WaitForRunOptions } from "./redis-runtime.ts";
export { createRedisRuntime } from "./redis-runtime.ts";
export type { RedisServer } from "./redis-server.ts";
export { freePort, startRedisServer } from "./redis-server.ts";
export type { RedisStorageOptions } from "./redis-storage.ts";
export { RedisStorage } from "./redis-storage.ts";
export type { HeldLock } from "./run-lock.ts";
export { RunLocks } from "./run-lock.ts";
export type { RunningWorker, RunWorkerOptions } from "./worker-cli.ts";
export { parseWorkerArgs, runWorker } from "./worker-cli.ts";
