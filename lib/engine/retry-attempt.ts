import type { EventOf, WorkflowEvent } from "../core/events.ts";

/**
 * The step attempts that the log's last event, a `workflow_retried`, gives the run's failed steps: one more
 * attempt of each step whose failure it took back, with the step's input. None when the log ends otherwise,
 * or when the run failed without a step failing (the workflow then goes on when it is replayed).
 *
 * `retryRun` appends them with the retry; a retried run that waits for its concurrency slot gets them
 * when it is let in (`RunLimits.admit`), so that its log never holds an attempt that no one sent.
 */
export function retriedAttempts(events: readonly WorkflowEvent[], timestamp: string): WorkflowEvent[] {
  const retry = events[events.length - 1];
  if (retry?.type !== "workflow_retried") return [];
  return retry.retriedFailures.map((failureSeq, index) => {
    const failure = events[failureSeq - 1] as EventOf<"step_failed">;
    const started = events.find(
      (event): event is EventOf<"step_started"> =>
        event.type === "step_started" && event.stepId === failure.stepId,
    );
    return {
      runId: retry.runId,
      timestamp,
      seq: events.length + 1 + index,
      type: "step_started",
      stepId: failure.stepId,
      stepName: failure.stepName,
      attempt: failure.attempt + 1,
      input: started?.input ?? [],
    };
  });
}

/** True when the run's log ends with a retry that has not gone on yet: a retried run waiting for its slot. */
export function waitsAfterRetry(events: readonly WorkflowEvent[]): boolean {
  return events[events.length - 1]?.type === "workflow_retried";
}
