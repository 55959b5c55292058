import { currentExecution, getStepInfo, requireExecution } from "./context.ts";
import type { Duration } from "./durations.ts";
import type { LogLevel } from "./execution.ts";
import { getLogger } from "./logger.ts";

/**
 * Suspends the workflow for a duration, or until a `Date`, without holding a process: the run is
 * woken by a durable timer. A suspension point.
 * @example
 * import { workflow, sleep } from "tsworkflow";
 * export const reminder = workflow("reminder", async () => {
 *   await sleep("3d");                      // or { hours: 2, minutes: 30 }, a Date, or ms
 * });
 * @throws NotInWorkflowError outside a workflow
 * @throws InvalidDurationError for a bad duration (the workflow sees it as a rejection)
 */
export function sleep(duration: Duration): Promise<void> {
  return requireExecution("sleep()").callSleep(duration);
}

function writeLog(level: LogLevel, message: string, data?: unknown): void {
  const execution = currentExecution();
  if (execution) {
    execution.callLog(level, message, data);
    return;
  }
  const logger = getLogger();
  // Inside a step, the line says which run and step it is about.
  const info = getStepInfo();
  const context = info
    ? { runId: info.runId, workflowName: info.workflowName, stepId: info.stepId, stepName: info.stepName }
    : {};
  const extra = data === undefined ? context : { ...context, data };
  if (level === "warning") logger.warn(message, extra);
  else logger[level](message, extra);
}

/**
 * Logs from workflow code: each message goes to the run's event log (`log_info`…) and to the structured
 * logger once, never again on replay. Outside a workflow it only goes to the logger (from inside a step,
 * with the step's `runId`, `workflowName`, `stepId` and `stepName`).
 * @example
 * import { workflow, log } from "tsworkflow";
 * export const wf = workflow("wf", async (orderId: string) => {
 *   log.info("processing order", { orderId });
 * });
 */
export const log = {
  info: (message: string, data?: unknown) => writeLog("info", message, data),
  warning: (message: string, data?: unknown) => writeLog("warning", message, data),
  error: (message: string, data?: unknown) => writeLog("error", message, data),
  debug: (message: string, data?: unknown) => writeLog("debug", message, data),
};

/**
 * Replay-safe current time. In a workflow, use it instead of `Date.now()` / `new Date()`: it is the time of
 * the event the workflow is reacting to, the same on every replay. Outside a workflow, the system time.
 */
export function now(): Date {
  const execution = currentExecution();
  return new Date(execution ? execution.currentTime() : Date.now());
}

/**
 * Replay-safe random number in [0, 1). In a workflow, use it instead of `Math.random()`: it is seeded by the
 * run id, so a replay draws the same numbers. Outside a workflow, `Math.random()`.
 */
export function random(): number {
  const execution = currentExecution();
  return execution ? execution.random() : Math.random();
}
