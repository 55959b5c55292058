/**
 * The CloudWatch metrics behind the construct's `metric*()` methods (the alarms and dashboard use them too).
 */

import {
  aws_cloudwatch as cloudwatch,
  Duration,
  type aws_lambda as lambda,
  type aws_sqs as sqs,
} from "aws-cdk-lib";
import type { DurableWorkflows } from "./durable-workflows.ts";

export function queueAge(queue: sqs.IQueue, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
  return queue.metricApproximateAgeOfOldestMessage({ statistic: cloudwatch.Stats.MAXIMUM, ...props });
}

export function deadLetterMessages(
  kit: DurableWorkflows,
  props?: cloudwatch.MathExpressionOptions,
): cloudwatch.MathExpression {
  const visible = (queue: sqs.IQueue) =>
    queue.metricApproximateNumberOfMessagesVisible({ statistic: cloudwatch.Stats.MAXIMUM });
  return new cloudwatch.MathExpression({
    expression: "workflow + step + timer",
    usingMetrics: {
      workflow: visible(kit.workflowDeadLetterQueue),
      step: visible(kit.stepDeadLetterQueue),
      timer: visible(kit.timerDeadLetterQueue),
    },
    label: "Messages in the dead-letter queues",
    period: Duration.minutes(1),
    ...props,
  });
}

export function tableThrottles(
  kit: DurableWorkflows,
  props?: cloudwatch.MathExpressionOptions,
): cloudwatch.MathExpression {
  const metric = (name: string) =>
    new cloudwatch.Metric({
      namespace: "AWS/DynamoDB",
      metricName: name,
      dimensionsMap: { TableName: kit.table.tableName },
      statistic: cloudwatch.Stats.SUM,
    });
  return new cloudwatch.MathExpression({
    expression: "reads + writes",
    usingMetrics: { reads: metric("ReadThrottleEvents"), writes: metric("WriteThrottleEvents") },
    label: "Throttled requests of the run table",
    period: Duration.minutes(5),
    ...props,
  });
}

/** One metric of each of the kit's functions, summed over 5 minutes. */
export function sumOverFunctions(
  kit: DurableWorkflows,
  label: string,
  metric: (fn: lambda.IFunction) => cloudwatch.IMetric,
  props?: cloudwatch.MathExpressionOptions,
): cloudwatch.MathExpression {
  const usingMetrics = Object.fromEntries(kit.functions.map((fn, index) => [`f${index}`, metric(fn)]));
  return new cloudwatch.MathExpression({
    expression: Object.keys(usingMetrics).join(" + "),
    usingMetrics,
    label,
    period: Duration.minutes(5),
    ...props,
  });
}
