import { RunNotFoundError } from "../core/errors.ts";
import { optional } from "../core/optional.ts";
import type { Registry } from "../core/registry.ts";
import type { AnyWorkflow, WorkflowArgs } from "../core/workflow.ts";
import type { EventStore, RunRecord } from "../ports/event-store.ts";
import { FINISHED_STATUSES } from "../ports/event-store.ts";
import type { StartOptions } from "../ports/runtime.ts";
import { LocalRuntime } from "../runtimes/embedded.ts";
import { VirtualClock } from "./virtual-clock.ts";

/*
 * The seed-compatible shortcut: run a workflow to its first wait (or to its end with time skipping) in a
 * runtime that lives for one call. `createTestEnvironment` does more (events, webhooks, fakes, a clock
 * that moves by chosen amounts).
 */

/** Options of {@link startLocal} and {@link resumeLocal}. */
export interface LocalTestOptions {
  /** Where the run lives, e.g. `new MemoryStorage()` or `new FileStorage({ dir })`. */
  storage: EventStore;
  /**
   * Sleeps and retry delays pass on a virtual clock: the run goes on until it completes or fails,
   * however long it would sleep. Without it, the run stops at its first wait that is not yet due.
   * @default false
   */
  timeSkipping?: boolean;
  /**
   * Where the run finds its workflows and steps: a `new Registry({ parent: defaultRegistry })` with fakes
   * defined in it replaces those steps for this run only.
   * @default the default registry
   */
  registry?: Registry;
}

/**
 * Runs a workflow in this process until it completes, fails or suspends, and returns its run id.
 * @example
 * import { MemoryStorage } from "tsworkflow/local";
 * import { startLocal } from "tsworkflow/testing";
 * const storage = new MemoryStorage();
 * const runId = await startLocal(onboarding, ["user_123"], { storage, timeSkipping: true });
 * expect((await storage.getRun(runId))?.status).toBe("completed");   // even with sleep("7d") inside
 */
export async function startLocal<W extends AnyWorkflow>(
  workflow: W,
  args: WorkflowArgs<W>,
  options: LocalTestOptions & StartOptions,
): Promise<string> {
  const runtime = testRuntime(options, Date.now());
  try {
    const { runId } = await runtime.engine.start(workflow, args, {
      ...optional("idempotencyKey", options.idempotencyKey),
      ...optional("tags", options.tags),
    });
    await runUntilWaiting(runtime, runId, options.timeSkipping ?? false);
    return runId;
  } finally {
    await runtime.close({ closeStorage: false });
  }
}

/**
 * Continues a suspended run: fires its sleeps and retries that are due (all of them with
 * `timeSkipping`), re-sends steps that were in flight, and runs until it completes, fails or waits again.
 * Returns the run.
 * @example
 * const run = await resumeLocal(runId, { storage, timeSkipping: true });
 * expect(run.status).toBe("completed");
 */
export async function resumeLocal(runId: string, options: LocalTestOptions): Promise<RunRecord> {
  const existing = await options.storage.getRun(runId);
  if (!existing) throw new RunNotFoundError(runId);
  const runtime = testRuntime(options, Math.max(Date.now(), Date.parse(existing.updatedAt)));
  try {
    await runtime.queue.enqueueActivation({ runId, cause: { kind: "recover" } });
    await runUntilWaiting(runtime, runId, options.timeSkipping ?? false);
    return (await options.storage.getRun(runId)) as RunRecord;
  } finally {
    await runtime.close({ closeStorage: false });
  }
}

function testRuntime(options: LocalTestOptions, startAt: number): LocalRuntime {
  return new LocalRuntime({
    storage: options.storage,
    timers: "manual",
    recover: false,
    ...(options.registry ? { registry: options.registry } : {}),
    ...(options.timeSkipping ? { clock: new VirtualClock(startAt) } : {}),
  });
}

async function runUntilWaiting(runtime: LocalRuntime, runId: string, timeSkipping: boolean): Promise<void> {
  for (;;) {
    await runtime.idle();
    const fired = await runtime.fireDueTimers(runtime.clock.now());
    if (fired > 0) continue;
    const run = await runtime.storage.getRun(runId);
    if (!run || FINISHED_STATUSES.has(run.status) || !timeSkipping) return;
    const next = runtime.timers.nextFireAt();
    if (next === undefined) return;
    (runtime.clock as VirtualClock).advanceTo(next);
  }
}
