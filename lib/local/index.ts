/** tsworkflow/local: the embedded (file, memory) runtime and its parts. */

export type { FileStorageOptions } from "../adapters/file/file-storage.ts";
export { FileStorage } from "../adapters/file/file-storage.ts";
export type { InProcessQueueOptions, TaskHandlers } from "../adapters/in-process/in-process-queue.ts";
export { InProcessQueue } from "../adapters/in-process/in-process-queue.ts";
export { LocalTimers } from "../adapters/in-process/local-timers.ts";
export { MemoryStorage } from "../adapters/memory/memory-storage.ts";
export * from "../redis/index.ts";
export type { LocalRuntimeOptions } from "../runtimes/embedded.ts";
export { LocalRuntime } from "../runtimes/embedded.ts";
export type { FileControlOptions } from "../runtimes/file-control.ts";
export { FileControl } from "../runtimes/file-control.ts";
export type { WebhookServerOptions } from "../webhooks/webhook-server.ts";
export { serveWebhooks } from "../webhooks/webhook-server.ts";
