/**
 * tsworkflow/testing: run workflows in tests, on a virtual clock: a test environment with run handles and
 * step fakes (`createTestEnvironment`), and the seed-compatible `startLocal` / `resumeLocal`.
 */

export type { RegistryOptions } from "../core/registry.ts";
export { defaultRegistry, Registry } from "../core/registry.ts";
export type { ReplayReport } from "../engine/replay-check.ts";
export { replayHistory } from "../engine/replay-check.ts";
export type { TestEnvironmentOptions } from "./environment.ts";
export { createTestEnvironment, TestEnvironment } from "./environment.ts";
export type { StepFake } from "./fake-steps.ts";
export type { LocalTestOptions } from "./local.ts";
export { resumeLocal, startLocal } from "./local.ts";
export { ReplayMismatchError } from "./replay-checks.ts";
export type { CallWebhookOptions, RunHandle } from "./run-handle.ts";
export type { StepStatus, StepSummary } from "./step-summaries.ts";
export { formatTimeline } from "./timeline.ts";
export { VirtualClock } from "./virtual-clock.ts";
