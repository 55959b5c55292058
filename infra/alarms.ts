import {
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cloudwatchActions,
  Duration,
  type aws_lambda as lambda,
  type aws_sns as sns,
  type aws_sqs as sqs,
} from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { DurableWorkflows } from "./durable-workflows.ts";
import { runMetricWidgets } from "./run-metrics.ts";

const ONE_MINUTE = { period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM };
const FIVE_MINUTES_SUM = { period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM };

/**
 * The kit's alarms: any message in a dead-letter queue (workflow, step, timer), old messages in either
 * queue, errors and throttles of each function, and throttled requests on the table. Each one says in
 * its description what is wrong; docs/deploy.md says what to do.
 */
export function createAlarms(
  kit: DurableWorkflows,
  settings: { maxReceiveCount: number; maxMessageAge: Duration },
  topic: sns.ITopic | undefined,
): cloudwatch.Alarm[] {
  const alarms: cloudwatch.Alarm[] = [];
  const add = (scope: Construct, name: string, alarm: cloudwatch.AlarmProps) => {
    const created = new cloudwatch.Alarm(scope, name, alarm);
    if (topic) {
      created.addAlarmAction(new cloudwatchActions.SnsAction(topic));
      created.addOkAction(new cloudwatchActions.SnsAction(topic));
    }
    alarms.push(created);
  };
  const anyOf = (metric: cloudwatch.IMetric, alarmDescription: string): cloudwatch.AlarmProps => ({
    alarmDescription,
    metric,
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });

  for (const [name, queue, what] of [
    [
      "WorkflowDeadLetterQueueAlarm",
      kit.workflowDeadLetterQueue,
      `an activation failed ${settings.maxReceiveCount} times`,
    ],
    [
      "StepDeadLetterQueueAlarm",
      kit.stepDeadLetterQueue,
      `a step task or timer failed ${settings.maxReceiveCount} times`,
    ],
  ] as const) {
    add(
      kit,
      name,
      anyOf(
        visible(queue),
        `tsworkflow: ${what} and is in ${queue.node.id}; its run is stuck until the message is redriven.`,
      ),
    );
  }
  add(
    kit,
    "TimerDeadLetterQueueAlarm",
    anyOf(
      visible(kit.timerDeadLetterQueue),
      "tsworkflow: EventBridge Scheduler could not deliver a timer to the step queue for 24 hours; the sweeper re-arms it, but the step queue or the scheduler role is broken.",
    ),
  );
  for (const [name, queue] of [
    ["WorkflowQueueAgeAlarm", kit.workflowQueue],
    ["StepQueueAgeAlarm", kit.stepQueue],
  ] as const) {
    add(kit, name, {
      alarmDescription: `tsworkflow: the oldest message in ${queue.node.id} is older than ${settings.maxMessageAge.toHumanString()}; the functions are failing, throttled or too slow.`,
      metric: queue.metricApproximateAgeOfOldestMessage(ONE_MINUTE),
      threshold: settings.maxMessageAge.toSeconds(),
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
  for (const fn of kit.functions) {
    const name = fn.node.id.replace(/Function$/, "");
    add(
      fn,
      "ErrorsAlarm",
      anyOf(
        fn.metricErrors(FIVE_MINUTES_SUM),
        `tsworkflow: the ${name.toLowerCase()} function failed (crashed or timed out); its messages come back and may reach a DLQ.`,
      ),
    );
    add(
      fn,
      "ThrottlesAlarm",
      anyOf(
        fn.metricThrottles(FIVE_MINUTES_SUM),
        `tsworkflow: the ${name.toLowerCase()} function was throttled; raise the account's or the function's concurrency.`,
      ),
    );
  }
  add(
    kit.table,
    "ThrottlesAlarm",
    anyOf(
      kit.metricTableThrottles(),
      "tsworkflow: DynamoDB throttled requests of the run table (a hot partition or an on-demand peak); activations retry, but runs slow down.",
    ),
  );
  return alarms;
}

function visible(queue: sqs.IQueue): cloudwatch.IMetric {
  return queue.metricApproximateNumberOfMessagesVisible(ONE_MINUTE);
}

/**
 * The kit's dashboard: runs (from tsworkflow's embedded metrics in `metricsNamespace`), queues, dead-letter
 * queues, functions and table on one page.
 */
export function createDashboard(kit: DurableWorkflows, metricsNamespace: string): cloudwatch.Dashboard {
  const dashboard = new cloudwatch.Dashboard(kit, "Dashboard", { defaultInterval: Duration.hours(3) });
  dashboard.addWidgets(...runMetricWidgets(metricsNamespace));
  const queues = [kit.workflowQueue, kit.stepQueue];
  const graph = (title: string, left: cloudwatch.IMetric[]) =>
    new cloudwatch.GraphWidget({ title, left, width: 8 });
  dashboard.addWidgets(
    graph(
      "Messages waiting",
      queues.map((queue) => queue.metricApproximateNumberOfMessagesVisible()),
    ),
    graph(
      "Age of the oldest message (s)",
      queues.map((queue) => queue.metricApproximateAgeOfOldestMessage()),
    ),
    graph(
      "Dead-letter queues",
      [kit.workflowDeadLetterQueue, kit.stepDeadLetterQueue, kit.timerDeadLetterQueue].map(visible),
    ),
  );
  const perFunction = (title: string, metric: (fn: lambda.IFunction) => cloudwatch.IMetric) =>
    graph(title, kit.functions.map(metric));
  dashboard.addWidgets(
    perFunction("Invocations", (fn) => fn.metricInvocations()),
    perFunction("Errors", (fn) => fn.metricErrors()),
    perFunction("Duration p99 (ms)", (fn) => fn.metricDuration({ statistic: cloudwatch.Stats.p(99) })),
  );
  dashboard.addWidgets(
    perFunction("Throttles", (fn) => fn.metricThrottles()),
    graph("Table capacity used", [
      kit.table.metricConsumedReadCapacityUnits(),
      kit.table.metricConsumedWriteCapacityUnits(),
    ]),
    graph("Table throttled requests", [kit.metricTableThrottles()]),
  );
  return dashboard;
}
