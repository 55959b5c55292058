import type { SerializedError } from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";

/** Where a step stands in a run's log. */
export type StepStatus = "running" | "retrying" | "completed" | "failed";

/**
 * One step call of a run, all its attempts together, read from the run's log. Typed by the step's
 * arguments and result when asked for by the step (`run.step(chargeCard)`).
 */
export interface StepSummary<Input extends unknown[] = unknown[], Result = unknown> {
  /** `charge_card#0`: the step's name and its call count in the run. */
  id: string;
  /** The step's name, `charge_card`. */
  name: string;
  /**
   * `running` (an attempt has no outcome yet; also a step abandoned when its run was cancelled),
   * `retrying` (an attempt failed and another one is due), `completed` or `failed` (for good).
   */
  status: StepStatus;
  /** Attempts started so far: 1 when the first attempt did it. */
  attempts: number;
  /** The arguments the step was called with. */
  input: Input;
  /** The step's result, once completed. */
  result?: Result;
  /** The error of the last failed attempt, while the step is `retrying` or once it `failed`. */
  error?: SerializedError;
}

/** The steps of a run in the order they were first called, from its events. */
export function summarizeSteps(events: readonly WorkflowEvent[]): StepSummary[] {
  const steps = new Map<string, StepSummary>();
  for (const event of events) {
    if (
      event.type !== "step_started" &&
      event.type !== "step_completed" &&
      event.type !== "step_retrying" &&
      event.type !== "step_failed"
    )
      continue;
    let summary = steps.get(event.stepId);
    if (!summary) {
      summary = { id: event.stepId, name: event.stepName, status: "running", attempts: 0, input: [] };
      steps.set(event.stepId, summary);
    }
    summary.attempts = Math.max(summary.attempts, event.attempt);
    switch (event.type) {
      case "step_started":
        summary.status = "running";
        summary.input = event.input;
        delete summary.error;
        break;
      case "step_completed":
        summary.status = "completed";
        summary.result = event.result;
        break;
      case "step_retrying":
        summary.status = "retrying";
        summary.error = event.error;
        break;
      case "step_failed":
        summary.status = "failed";
        summary.error = event.error;
        break;
    }
  }
  return [...steps.values()];
}
