import type { RunExecution, StepWait } from "../execution.ts";
import { type ArmedTimer, iso, type Send, timerSend, type WaitBehaviour } from "./wait-kind.ts";

/** The timer of a step's retry: `retry:<stepId>:<attempt>`. */
export const retryTimerId = (stepId: string, attempt: number): string => `retry:${stepId}:${attempt}`;

function retryTimer(wait: StepWait): ArmedTimer | undefined {
  if (wait.state !== "retry_wait") return undefined;
  return { timerId: retryTimerId(wait.stepId, wait.attempt + 1), fireAt: wait.retryAt ?? 0 };
}

/** A step: its attempt is out with an executor (a task), or it waits for its retry (a timer). */
export const stepWait: WaitBehaviour<StepWait> = {
  timer: retryTimer,
  label: (wait) =>
    wait.state === "retry_wait"
      ? `retry of ${wait.stepId} (attempt ${wait.attempt + 1}) at ${iso(wait.retryAt ?? 0)}`
      : undefined,
  sends: (wait): Send[] =>
    wait.state === "running" ? [{ type: "step", wait }] : timerSend(retryTimer(wait)),
};

/** True when the log has applied this attempt's outcome already (the run no longer waits for it). */
export function stepOutcomeApplied(execution: RunExecution, stepId: string, attempt: number): boolean {
  const wait = execution.waitOf("step", stepId);
  return !(wait?.state === "running" && wait.attempt <= attempt);
}

/**
 * The seq from which an activation lists outcomes: the oldest `step_started` of an attempt still out (an
 * outcome of an older attempt is in the log already, or no longer awaited), else the next seq.
 */
export function oldestAttemptOut(execution: RunExecution): number {
  let oldest = execution.committedVersion + 1;
  for (const wait of execution.waits())
    if (wait.kind === "step" && wait.state === "running") oldest = Math.min(oldest, wait.startedSeq);
  return oldest;
}
