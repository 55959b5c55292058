import { InvalidRunStateError, RunNotFoundError } from "../core/errors.ts";
import type { EventOf, WorkflowEvent } from "../core/events.ts";
import { assertRunId } from "../core/ids.ts";
import { recordedAdmission } from "./admission.ts";
import type { Engine } from "./engine.ts";
import { type CommandRef, commandOf, describeRef } from "./execution.ts";
import { retriedAttempts } from "./retry-attempt.ts";

/**
 * Operations on runs that no activation performs: kept out of the `Engine` class so that a Lambda bundle,
 * which never retries or recovers runs itself, does not carry them.
 */

/** How many runs `recoverRuns` reads at a time. */
const RECOVER_PAGE_SIZE = 500;

/**
 * Gives a failed run another go from where it failed: the step whose failure failed the run gets one
 * more attempt, and the workflow goes on from there (earlier steps are not run again).
 *
 * A run of a workflow with `concurrency` gave its slot back when it failed: like a new run, it is `pending`
 * again and takes its place at the end of its key's line, and goes on once it holds a slot (at once when
 * one is free and no run waits before it). Its start is not counted again under the workflow's `rateLimit`:
 * the run started once, and its steps' own limits apply to the new attempt as to any other.
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
  const retry: WorkflowEvent = {
    runId,
    timestamp,
    seq: events.length + 1,
    type: "workflow_retried",
    retriedFailures: stepFailure ? [stepFailure.seq] : [],
  };
  const log = [...events, retry];
  if (!recordedAdmission(events)?.concurrency) {
    const next = [retry, ...retriedAttempts(log, timestamp)];
    await store.commit(runId, events.length, next, { status: "running", updatedAt: timestamp });
    return;
  }
  // The new attempt is appended once the run holds its slot (`RunLimits.rejoin`, or `admit` in a later
  // activation). An engine without the limits (a client that only records the retry) leaves it all to the
  // run's next activation.
  await store.commit(runId, events.length, [retry], { status: "pending", updatedAt: timestamp });
  await engine.runLimits?.rejoin(runId, log);
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
