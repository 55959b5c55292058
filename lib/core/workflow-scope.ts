import type { $ZodType } from "zod/v4/core";
import type { Duration } from "./durations.ts";
import type { AnyStep } from "./step.ts";
import type { RunTags } from "./tags.ts";
import type { AnyWorkflow } from "./workflow.ts";

export type LogLevel = "info" | "warning" | "error" | "debug";

/**
 * What the author's API (`step()`, `sleep()`, `waitForEvent()`…) asks of the run it is called in. The
 * engine's run execution implements it; the API knows only this interface, so the author's kernel
 * (lib/core) never depends on the engine.
 */
export interface WorkflowScope {
  /** A step call: its recorded result on replay, else a new attempt. */
  callStep(definition: AnyStep, args: unknown[]): Promise<unknown>;
  /** A durable sleep. */
  callSleep(duration: Duration): Promise<void>;
  /** A wait for an event (or a webhook's call); `token` is the webhook's. */
  callHook(
    eventName: string,
    options: { timeout?: Duration | undefined; schema?: $ZodType | undefined; webhook?: boolean },
  ): { promise: Promise<unknown>; token: string | undefined };
  /** The index of the next webhook created by this run (its hook's name). */
  nextWebhookIndex(): number;
  /** A child run. */
  callChild(definition: AnyWorkflow, args: unknown[]): Promise<unknown>;
  /** A log line, written once however often the run replays. */
  callLog(level: LogLevel, message: string, data?: unknown): void;
  /** Adds tags to the run (recorded once, replayed). */
  callSetTags(tags: RunTags): void;
  /** `patched(patchId)`: whether this run takes the new branch (decided once, recorded, replayed). */
  callPatched(patchId: string): boolean;
  /** `deprecatePatch(patchId)`: records that the run took the new branch, which is now the only one. */
  callDeprecatePatch(patchId: string): void;
  /** `continueAsNew(...args)`: the run ends once this activation is done, and a new one goes on with `args`. */
  callContinueAsNew(args: unknown[]): void;
  /** The run's deterministic time (of the event being applied). */
  currentTime(): number;
  /** The run's deterministic random number in [0, 1). */
  random(): number;
}
