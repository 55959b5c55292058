import {
  aws_lambda_event_sources as eventSources,
  aws_events as events,
  aws_events_targets as eventTargets,
  aws_lambda as lambda,
} from "aws-cdk-lib";
import type { DurableWorkflows } from "./durable-workflows.ts";
import type { Settings } from "./props.ts";

/**
 * What invokes each function's `live` alias: the workflow queue (FIFO batches) and the step queue,
 * reporting partial batch failures; a rule every `sweepInterval` for the sweeper; the table's stream,
 * filtered to the run documents DynamoDB's TTL deleted, for the reaper.
 */
export function connectTriggers(kit: DurableWorkflows, settings: Settings): void {
  kit.aliases.workflow.addEventSource(
    new eventSources.SqsEventSource(kit.workflowQueue, {
      batchSize: settings.workflowBatchSize,
      reportBatchItemFailures: true,
    }),
  );
  kit.aliases.step.addEventSource(
    new eventSources.SqsEventSource(kit.stepQueue, {
      batchSize: settings.stepBatchSize,
      reportBatchItemFailures: true,
    }),
  );
  new events.Rule(kit, "SweepSchedule", {
    description: "tsworkflow: runs the sweeper",
    schedule: events.Schedule.rate(settings.sweepInterval),
    targets: [new eventTargets.LambdaFunction(kit.aliases.sweeper, { retryAttempts: 2 })],
  });
  kit.aliases.reaper.addEventSource(
    new eventSources.DynamoEventSource(kit.table, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: 100,
      bisectBatchOnError: true,
      retryAttempts: 10,
      // Only run documents that DynamoDB's TTL deleted: the reaper is invoked for nothing else.
      filters: [
        lambda.FilterCriteria.filter({
          eventName: lambda.FilterRule.isEqual("REMOVE"),
          userIdentity: {
            type: lambda.FilterRule.isEqual("Service"),
            principalId: lambda.FilterRule.isEqual("dynamodb.amazonaws.com"),
          },
          dynamodb: { Keys: { sk: { S: lambda.FilterRule.isEqual("RUN") } } },
        }),
      ],
    }),
  );
}
