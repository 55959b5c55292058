/** tsworkflow/local: the embedded (file, memory) runtime and its parts. */

export type { FileStorageOptions } from "./file-storage.ts";
export { FileStorage } from "./file-storage.ts";
export type { InProcessQueueOptions, TaskHandlers } from "./in-process-queue.ts";
export { InProcessQueue } from "./in-process-queue.ts";
export { LocalTimers } from "./local-timers.ts";
export { MemoryStorage } from "./memory-storage.ts";
export * from "./redis/index.ts";
export type { LocalRuntimeOptions } from "./runtime.ts";
export { LocalRuntime } from "./runtime.ts";
export type { WebhookServerOptions } from "./webhook-server.ts";
export { serveWebhooks } from "./webhook-server.ts";
