/** tsworkflow/redis: Redis mode. RedisStorage, the BullMQ queue and timers, the runtime and the worker. Loads ioredis and BullMQ. */

export type {
  BullMQQueueOptions,
  ConsumeOptions,
  QueueConsumer,
  QueueHandlers,
} from "../adapters/redis/bullmq-queue.ts";
export { BullMQQueue, defaultWorkerId, stepJobId } from "../adapters/redis/bullmq-queue.ts";
export type { BullMQTimersOptions } from "../adapters/redis/bullmq-timers.ts";
export { BullMQTimers, timerDeduplicationId } from "../adapters/redis/bullmq-timers.ts";
export { RedisUnavailableError, redactUrl } from "../adapters/redis/connection.ts";
export { RedisRateLimitStore } from "../adapters/redis/redis-rate-limit-store.ts";
export { RedisScheduleStore } from "../adapters/redis/redis-schedule-store.ts";
export { RedisSlotStore } from "../adapters/redis/redis-slot-store.ts";
export type { RedisStorageOptions } from "../adapters/redis/redis-storage.ts";
export { RedisStorage } from "../adapters/redis/redis-storage.ts";
export type { HeldLock, StepAttempt } from "../adapters/redis/run-lock.ts";
export { RunLocks } from "../adapters/redis/run-lock.ts";
export type { RegistryOptions } from "../core/registry.ts";
export { defaultRegistry, Registry } from "../core/registry.ts";
export type { RedisRuntime, RedisRuntimeOptions, WaitForRunOptions } from "../runtimes/redis.ts";
export { createRedisRuntime } from "../runtimes/redis.ts";
export type { RedisSweepOptions } from "../runtimes/redis-sweeper.ts";
export type { RunningWorker, RunWorkerOptions } from "../runtimes/redis-worker.ts";
export { parseWorkerArgs, runWorker } from "../runtimes/redis-worker.ts";
export type { RedisServer } from "./redis-server.ts";
export { freePort, startRedisServer } from "./redis-server.ts";
