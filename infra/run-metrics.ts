import { aws_cloudwatch as cloudwatch, Duration } from "aws-cdk-lib";
import { CLOUDWATCH_METRICS } from "../lib/observability/cloudwatch-metrics.ts";

/** The namespace of tsworkflow's embedded metrics unless the props name another. */
export const DEFAULT_METRICS_NAMESPACE = "tsworkflow";

const FIVE_MINUTES = Duration.minutes(5);

/**
 * One of tsworkflow's run metrics (written by `cloudWatchMetrics` in the functions' logs), over every
 * workflow and service: a SEARCH of the namespace, the series combined by `combine` (SUM or MAX).
 */
function runMetric(
  namespace: string,
  name: string,
  statistic: "Sum" | "Maximum" | "p99",
  combine: "SUM" | "MAX",
  label: string,
): cloudwatch.MathExpression {
  // A search schema quotes a namespace with spaces or characters other than letters and digits.
  const schema = /^[A-Za-z0-9]+$/.test(namespace) ? namespace : `"${namespace}"`;
  return new cloudwatch.MathExpression({
    expression: `${combine}(SEARCH('{${schema},service,workflow} MetricName="${name}"', '${statistic}', 300))`,
    label,
    period: FIVE_MINUTES,
    usingMetrics: {},
  });
}

/**
 * The dashboard's row of run metrics: runs started and ended per status, step attempts, errors and retries,
 * step run time and schedule-to-start, and how late timers fired. Empty until the functions write them
 * (`createHandlers(..., { telemetry: cloudWatchMetrics(metrics) })`, see the README's Observability).
 */
export function runMetricWidgets(namespace: string): cloudwatch.IWidget[] {
  const sum = (name: string, label: string) => runMetric(namespace, name, "Sum", "SUM", label);
  const worst = (name: string, label: string) => runMetric(namespace, name, "p99", "MAX", label);
  const m = CLOUDWATCH_METRICS;
  return [
    new cloudwatch.GraphWidget({
      title: "Runs per status (5 min)",
      width: 8,
      left: [
        sum(m.runsStarted, "started"),
        sum(m.runsCompleted, "completed"),
        sum(m.runsFailed, "failed"),
        sum(m.runsCancelled, "cancelled"),
        sum(m.runsContinued, "continued as new"),
      ],
    }),
    new cloudwatch.GraphWidget({
      title: "Step attempts, errors and retries (5 min)",
      width: 8,
      left: [sum(m.stepAttempts, "attempts"), sum(m.stepErrors, "errors"), sum(m.stepRetries, "retries")],
    }),
    new cloudwatch.GraphWidget({
      title: "Steps and timers, p99 (ms)",
      width: 8,
      left: [
        worst(m.stepDuration, "step run time"),
        worst(m.stepScheduleToStart, "step schedule-to-start"),
        worst(m.activationScheduleToStart, "activation schedule-to-start"),
        worst(m.timerLateness, "timer lateness"),
      ],
    }),
  ];
}
