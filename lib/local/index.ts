/** tsworkflow/local: the embedded runtime (file and memory stores, in-process queue and timers) and the webhook server. Loads no Redis, AWS or CDK code: Redis mode is `tsworkflow/redis`. */

export { FileScheduleStore } from "../adapters/file/file-schedule-store.ts";
export type { FileStorageOptions, RunRepair } from "../adapters/file/file-storage.ts";
export { FileStorage } from "../adapters/file/file-storage.ts";
export type { InboxRequest } from "../adapters/file/inbox.ts";
export type { InProcessQueueOptions, TaskHandlers } from "../adapters/in-process/in-process-queue.ts";
export { InProcessQueue } from "../adapters/in-process/in-process-queue.ts";
export type { LocalTimer } from "../adapters/in-process/local-timers.ts";
export { LocalTimers } from "../adapters/in-process/local-timers.ts";
export { MemoryScheduleStore } from "../adapters/memory/memory-schedule-store.ts";
export { MemoryStorage } from "../adapters/memory/memory-storage.ts";
export type { RegistryOptions } from "../core/registry.ts";
export { defaultRegistry, Registry } from "../core/registry.ts";
export type { LocalRuntimeOptions } from "../runtimes/embedded.ts";
export { LocalRuntime } from "../runtimes/embedded.ts";
export type { FileControlOptions } from "../runtimes/file-control.ts";
export { FileControl } from "../runtimes/file-control.ts";
export type { WebhookServerOptions } from "../webhooks/webhook-server.ts";
export { serveWebhooks } from "../webhooks/webhook-server.ts";
