import { InvalidRunStateError, RunNotFoundError } from "../core/errors.ts";
import type { EventOf, WorkflowEvent } from "../core/events.ts";
import { assertRunId } from "../core/ids.ts";
import type { Engine } from "./engine.ts";
import { type CommandRef, commandOf, describeRef } from "./execution.ts";

/**
 * Operations on runs that no activation performs: kept out of the `Engine` class so that a Lambda bundle,
 * which never retries or recovers runs itself, does not carry them.
 */

/** How many runs `recoverRuns` reads at a time. */
const RECOVER_PAGE_SIZE = 500;

/**
 * Gives a failed run another go from where it failed: the step whose failure failed the run gets one
 * more attempt, and the workflow goes on from there (earlier steps are not run again).
 * @example
 * import { retryRun } from "tsworkflow/engine";
 * await retryRun(runtime.engine, "run_0mdx2k4a1b_9f3c2e7a1d5b");
 * @throws RunNotFoundError for an unknown run
 * @throws InvalidRunStateError for a run that has not failed, or whose workflow caught the step's failure
 *   and called more steps (or sleeps, waits, children) before it failed: a saga's compensations, say
 */
export async function retryRun(engine: Engine, runId: string): Promise<void> {
  assertRunId(runId);
  await engine.exclusively(runId, () => appendRetry(engine, runId));
  await engine.enqueueActivation({ runId, cause: { kind: "recover" } });
}

async function appendRetry(engine: Engine, runId: string): Promise<void> {
  const { store } = engine;
  const run = await store.getRun(runId);
  if (!run) throw new RunNotFoundError(runId);
  if (run.status !== "failed") {
    throw new InvalidRunStateError(`Run ${runId} is ${run.status}; only failed runs can be retried.`);
  }
  const events = await store.getEvents(runId);
  const failure = events.findLast((event) => event.type === "workflow_failed");
  const stepFailure = events.findLast(
    (event): event is EventOf<"step_failed"> =>
      event.type === "step_failed" &&
      failure?.type === "workflow_failed" &&
      event.seq < failure.seq &&
      event.error.name === failure.error.name &&
      event.error.message === failure.error.message,
  );
  const wentOn = stepFailure && events.find((event) => event.seq > stepFailure.seq && commandOf(event));
  if (wentOn) {
    // Replay takes the failure back, so the workflow could not have issued what the log says came next.
    throw new InvalidRunStateError(
      `Run ${runId} cannot be retried: its workflow caught the failure of step "${stepFailure.stepName}" (event #${stepFailure.seq}) and went on to ${describeRef(commandOf(wentOn) as CommandRef)} (event #${wentOn.seq}) before it failed, so another attempt of that step could not take up the run where it was. Start a new run instead.`,
    );
  }
  const timestamp = new Date(engine.now()).toISOString();
  const next: WorkflowEvent[] = [
    {
      runId,
      timestamp,
      seq: events.length + 1,
      type: "workflow_retried",
      retriedFailures: stepFailure ? [stepFailure.seq] : [],
    },
  ];
  if (stepFailure) {
    const started = events.find(
      (event): event is EventOf<"step_started"> =>
        event.type === "step_started" && event.stepId === stepFailure.stepId,
    );
    next.push({
      runId,
      timestamp,
      seq: events.length + 2,
      type: "step_started",
      stepId: stepFailure.stepId,
      stepName: stepFailure.stepName,
      attempt: stepFailure.attempt + 1,
      input: started?.input ?? [],
    });
  }
  await store.commit(runId, events.length, next, { status: "running", updatedAt: timestamp });
}

/**
 * Activates every unfinished run with cause `recover`: each re-sends its pending steps and re-arms its
 * timers (duplicates are harmless). Returns how many runs it woke.
 * @example
 * import { recoverRuns } from "tsworkflow/engine";
 * console.log(`${await recoverRuns(engine)} runs resumed`);
 */
export async function recoverRuns(engine: Engine): Promise<number> {
  // Page by page, never all runs at once; a run that changed status meanwhile is woken once.
  const woken = new Set<string>();
  for (const status of ["pending", "running", "suspended"] as const) {
    let cursor: string | undefined;
    do {
      const page = await engine.store.listRuns({
        status,
        limit: RECOVER_PAGE_SIZE,
        ...(cursor ? { cursor } : {}),
      });
      for (const run of page.runs) {
        if (woken.has(run.runId)) continue;
        woken.add(run.runId);
        await engine.enqueueActivation({ runId: run.runId, cause: { kind: "recover" } });
      }
      cursor = page.nextCursor;
    } while (cursor);
  }
  return woken.size;
}
