import type { WorkflowEvent } from "../core/events.ts";
import type { StepOutcome } from "../ports/event-store.ts";
import type { StepTask } from "../ports/task-queue.ts";
import {
  type ActivationSpan,
  type EngineTelemetry,
  noTelemetry,
  type TelemetryFactory,
  type TracedRun,
} from "./engine-telemetry.ts";

/** The units tsworkflow's CloudWatch metrics use (Powertools' `MetricUnit` values). */
export type CloudWatchUnit = "Count" | "Milliseconds";

/**
 * What {@link cloudWatchMetrics} needs of a Powertools `Metrics` instance (`@aws-lambda-powertools/metrics`):
 * `singleMetric()`, whose metric is written at once as one embedded-metric-format line.
 */
export interface CloudWatchMetricsSink {
  singleMetric(): {
    addDimension(name: string, value: string): void;
    addMetric(name: string, unit: CloudWatchUnit, value: number): void;
  };
}

/** The metrics {@link cloudWatchMetrics} writes, each with the dimension `workflow` (and Powertools' `service`). */
export const CLOUDWATCH_METRICS = {
  runsStarted: "RunsStarted",
  runsCompleted: "RunsCompleted",
  runsFailed: "RunsFailed",
  runsCancelled: "RunsCancelled",
  runsContinued: "RunsContinued",
  stepAttempts: "StepAttempts",
  stepErrors: "StepErrors",
  stepRetries: "StepRetries",
  stepDuration: "StepDuration",
  stepScheduleToStart: "StepScheduleToStart",
  activationScheduleToStart: "ActivationScheduleToStart",
  timerLateness: "TimerLateness",
} as const;

const RUN_ENDS: Partial<Record<WorkflowEvent["type"], string>> = {
  workflow_completed: CLOUDWATCH_METRICS.runsCompleted,
  workflow_failed: CLOUDWATCH_METRICS.runsFailed,
  workflow_cancelled: CLOUDWATCH_METRICS.runsCancelled,
  workflow_continued_as_new: CLOUDWATCH_METRICS.runsContinued,
};

/**
 * Telemetry that writes tsworkflow's metrics in CloudWatch's embedded metric format through your Powertools
 * `Metrics` instance: runs started and ended (by status), step attempts, errors, retries, run time and
 * schedule-to-start, and how late timers fired, each with the dimension `workflow`. CloudWatch turns the
 * function's log lines into metrics; no API call is made. The Lambda bundle carries Powertools' metrics
 * only when you import it. The construct's `dashboard` charts these metrics (same namespace).
 * @example
 * import { Metrics } from "@aws-lambda-powertools/metrics";
 * import { cloudWatchMetrics, createHandlers } from "tsworkflow/aws";
 * import { onboarding } from "./workflows.ts";
 * const metrics = new Metrics({ namespace: "tsworkflow", serviceName: "orders" });
 * export const { workflowHandler, stepHandler, startHandler, webhookHandler, sweeperHandler, reaperHandler } =
 *   createHandlers({ workflows: [onboarding] }, { telemetry: cloudWatchMetrics(metrics) });
 */
export function cloudWatchMetrics(metrics: CloudWatchMetricsSink): TelemetryFactory {
  return (now) => {
    const record = (workflow: string, name: string, unit: CloudWatchUnit, value: number) => {
      const metric = metrics.singleMetric();
      metric.addDimension("workflow", workflow);
      metric.addMetric(name, unit, value);
    };
    const telemetry: EngineTelemetry = {
      enabled: true,
      // A run is counted as started by its first activation (see `activationMetrics`), not by start().
      start: noTelemetry.start,
      async activation(task) {
        return activationMetrics(record, task.sentAt === undefined ? undefined : now() - task.sentAt);
      },
      async stepAttempt(task: StepTask, attempt: () => Promise<StepOutcome>) {
        const began = now();
        if (task.sentAt !== undefined)
          record(
            task.workflowName,
            CLOUDWATCH_METRICS.stepScheduleToStart,
            "Milliseconds",
            began - task.sentAt,
          );
        const outcome = await attempt();
        record(task.workflowName, CLOUDWATCH_METRICS.stepAttempts, "Count", 1);
        record(task.workflowName, CLOUDWATCH_METRICS.stepDuration, "Milliseconds", now() - began);
        if (!outcome.ok) record(task.workflowName, CLOUDWATCH_METRICS.stepErrors, "Count", 1);
        return outcome;
      },
    };
    return telemetry;
  };
}

/** One activation's metrics: what its commit started and ended (runs, retries), how late its timers fired. */
function activationMetrics(
  record: (workflow: string, name: string, unit: CloudWatchUnit, value: number) => void,
  scheduleToStart: number | undefined,
): ActivationSpan {
  let workflow = "";
  let first = false;
  let dueSleeps = new Map<string, number>();
  return {
    traceparent: undefined,
    begin(run: TracedRun) {
      workflow = run.definition.name;
      first = run.committedVersion === 1;
      if (scheduleToStart !== undefined)
        record(workflow, CLOUDWATCH_METRICS.activationScheduleToStart, "Milliseconds", scheduleToStart);
      dueSleeps = new Map();
      for (const wait of run.waits()) if (wait.kind === "sleep") dueSleeps.set(wait.sleepId, wait.resumeAt);
    },
    committed(events) {
      // Once per run, whoever started it (start(), the client, a schedule, a parent): its first commit.
      if (first) record(workflow, CLOUDWATCH_METRICS.runsStarted, "Count", 1);
      for (const event of events) {
        const ended = RUN_ENDS[event.type];
        if (ended) record(workflow, ended, "Count", 1);
        if (event.type === "step_retrying") record(workflow, CLOUDWATCH_METRICS.stepRetries, "Count", 1);
        const resumeAt = event.type === "sleep_completed" ? dueSleeps.get(event.sleepId) : undefined;
        if (resumeAt !== undefined)
          record(
            workflow,
            CLOUDWATCH_METRICS.timerLateness,
            "Milliseconds",
            Date.parse(event.timestamp) - resumeAt,
          );
      }
    },
    end() {},
  };
}
