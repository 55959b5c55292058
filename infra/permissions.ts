import {
  aws_iam as iam,
  type aws_lambda as lambda,
  Stack,
  type aws_s3 as s3,
  Validations,
} from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { DurableWorkflows } from "./durable-workflows.ts";

/** What `createClient(config).start/getRun` and the start function do on the table. */
export const CLIENT_TABLE_ACTIONS = [
  "dynamodb:GetItem",
  "dynamodb:PutItem",
  "dynamodb:DeleteItem",
  "dynamodb:Query",
] as const;

/** What reading runs needs on the table: documents, logs, and listing through the indexes. */
export const READ_TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"] as const;

/** The ARNs of a table and its indexes (listing queries the indexes). */
export function tableAndIndexes(kit: DurableWorkflows): string[] {
  return [kit.table.tableArn, `${kit.table.tableArn}/index/*`];
}

/** The ARN pattern of the payload objects (`runs/<runId>/...`). */
export function payloadObjects(bucket: s3.IBucket): string {
  return bucket.arnForObjects("runs/*");
}

/** The recurring schedules of the kit's group: `awsSchedules` names them `schedule.<name>`. */
export function recurringSchedulesArn(scope: Construct, scheduleGroupName: string): string {
  return Stack.of(scope).formatArn({
    service: "scheduler",
    resource: "schedule",
    resourceName: `${scheduleGroupName}/schedule.*`,
  });
}

function allow(fn: lambda.IFunction, actions: readonly string[], resources: string[]): void {
  fn.addToRolePolicy(new iam.PolicyStatement({ actions: [...actions], resources }));
}

/** Lets `fn` pass the kit's scheduler role, to EventBridge Scheduler only (the schedules it creates use it). */
function allowPassingSchedulerRole(kit: DurableWorkflows, fn: lambda.IFunction): void {
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ["iam:PassRole"],
      resources: [kit.schedulerRole.roleArn],
      conditions: { StringEquals: { "iam:PassedToService": "scheduler.amazonaws.com" } },
    }),
  );
}

/** Grants each function what its code does, and nothing else (docs/deploy.md lists them). */
export function grantFunctions(kit: DurableWorkflows, scheduleGroupName: string): void {
  const stack = Stack.of(kit);
  const tableArn = kit.table.tableArn;
  const objects = payloadObjects(kit.payloadBucket);
  const schedules = stack.formatArn({
    service: "scheduler",
    resource: "schedule",
    resourceName: `${scheduleGroupName}/*`,
  });
  // Workflow function: replays runs (GetItem, Query), commits (PutItem, one transaction of PutItems for
  // a split commit), updates the run document (UpdateItem), starts child runs (PutItem, and DeleteItem
  // to free the idempotency key of an expired one); large payloads in S3; it sends activations, steps
  // and short timers, and creates and deletes the schedules of long timers.
  // Step function: stores one outcome per attempt, re-delays early timers and defers steps its code does
  // not know yet, and goes on with the run itself after a step the run waits on alone and when a timer is
  // due (an activation, as the workflow function's): the same permissions.
  for (const fn of [kit.workflowFunction, kit.stepFunction]) {
    allow(
      fn,
      [
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
      ],
      [tableArn],
    );
    allow(fn, ["s3:PutObject", "s3:GetObject"], [objects]);
    allow(fn, ["sqs:SendMessage"], [kit.workflowQueue.queueArn, kit.stepQueue.queueArn]);
    allow(fn, ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"], [schedules]);
    allowPassingSchedulerRole(kit, fn);
    acknowledgeWildcard(
      fn,
      `Resource::${flattenForNag(stack.resolve(schedules))}`,
      "Timer schedules are created at run time with names derived from the run and timer ids; the wildcard is limited to the kit's own schedule group.",
    );
  }
  // Start function: what the client needs (see grantStart).
  allow(kit.startFunction, CLIENT_TABLE_ACTIONS, [tableArn]);
  allow(kit.startFunction, ["s3:PutObject", "s3:GetObject"], [objects]);
  allow(kit.startFunction, ["sqs:SendMessage"], [kit.workflowQueue.queueArn]);
  // Webhook function: finds the run of a token (GetItem, Query) and delivers the event (PutItem, SendMessage).
  if (kit.webhookFunction) {
    allow(kit.webhookFunction, ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"], [tableArn]);
    allow(kit.webhookFunction, ["s3:PutObject", "s3:GetObject"], [objects]);
    allow(kit.webhookFunction, ["sqs:SendMessage"], [kit.workflowQueue.queueArn]);
  }
  // Sweeper: lists runs through the indexes, reads their documents and logs, repairs a lagging document
  // (UpdateItem, which also takes a finished child out of the due index), and activates runs again.
  allow(kit.sweeperFunction, [...READ_TABLE_ACTIONS, "dynamodb:UpdateItem"], tableAndIndexes(kit));
  allow(kit.sweeperFunction, ["s3:GetObject"], [objects]);
  allow(kit.sweeperFunction, ["sqs:SendMessage"], [kit.workflowQueue.queueArn]);
  // Reaper: deletes the items and payloads of expired runs (the stream read is the event source's).
  allow(kit.reaperFunction, ["dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem"], [tableArn]);
  allow(kit.reaperFunction, ["s3:DeleteObject"], [objects]);
  allow(kit.reaperFunction, ["s3:ListBucket"], [kit.payloadBucket.bucketArn]);

  const objectsId = `Resource::${flattenForNag(stack.resolve(objects))}`;
  for (const fn of [
    kit.workflowFunction,
    kit.stepFunction,
    kit.startFunction,
    kit.webhookFunction,
    kit.sweeperFunction,
    kit.reaperFunction,
  ]) {
    if (fn)
      acknowledgeWildcard(
        fn,
        objectsId,
        "Payload objects are named at run time from the run id and the hash of their content (runs/<runId>/<sha256>.json); the wildcard is limited to the kit's payload bucket.",
      );
  }
  acknowledgeWildcard(
    kit.sweeperFunction,
    `Resource::${flattenForNag(stack.resolve(`${kit.table.tableArn}/index/*`))}`,
    "The sweeper lists runs through the table's own indexes (status, workflow, due time).",
  );
}

/**
 * With the construct's `schedules` prop: the sweeper reconciles the declared schedules (creates,
 * updates and deletes `schedule.*` in the group, passing the scheduler role; reads and writes their
 * state items). The step function, which starts each tick's run and updates the schedule's state, has
 * the table actions for it already (see `grantFunctions`).
 */
export function grantScheduleFunctions(kit: DurableWorkflows, scheduleGroupName: string): void {
  const recurring = recurringSchedulesArn(kit, scheduleGroupName);
  allow(
    kit.sweeperFunction,
    ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
    [recurring],
  );
  allowPassingSchedulerRole(kit, kit.sweeperFunction);
  allow(kit.sweeperFunction, ["dynamodb:PutItem", "dynamodb:DeleteItem"], [kit.table.tableArn]);
  // The step function starts ticks' runs and updates the schedules' state with the table actions it has.
  acknowledgeWildcard(
    kit.sweeperFunction,
    `Resource::${flattenForNag(Stack.of(kit).resolve(recurring))}`,
    "Recurring schedules are named schedule.<name> from the schedules the code declares; the wildcard is limited to those names in the kit's own schedule group.",
  );
}

/**
 * Acknowledges the `Resource::*` finding of the actions that have no resource-level permission: the
 * reaper's stream event source (`dynamodb:ListStreams`) and, with `tracing`, X-Ray on every function.
 */
export function acknowledgeServiceWildcards(kit: DurableWorkflows, tracing: boolean): void {
  Validations.of(kit.reaperFunction.role as iam.Role).acknowledge({
    id: "AwsSolutions-IAM5[Resource::*]",
    reason:
      "The stream event source grants dynamodb:ListStreams (and X-Ray active tracing, with the tracing prop, xray:PutTraceSegments), which have no resource-level permission; every other statement names the table's stream.",
  });
  if (!tracing) return;
  // The reaper's role acknowledges the same finding above (dynamodb:ListStreams).
  for (const fn of kit.functions.filter((candidate) => candidate !== kit.reaperFunction)) {
    Validations.of(fn.role as iam.Role).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "X-Ray active tracing (the tracing prop) grants xray:PutTraceSegments and xray:PutTelemetryRecords, which have no resource-level permission.",
    });
  }
}

function acknowledgeWildcard(fn: lambda.IFunction, resource: string, reason: string): void {
  Validations.of(fn.role as iam.Role as Construct).acknowledge({
    id: `AwsSolutions-IAM5[${resource}]`,
    reason,
  });
}

/** The string cdk-nag reports for a resolved IAM resource (its `flattenCfnReference`). */
export function flattenForNag(node: unknown): string {
  if (node === undefined) return "";
  if (typeof node === "string") return node.replace(/\$\{/g, "<").replace(/}/g, ">");
  if (typeof node === "object" && node !== null) {
    const value = node as Record<string, unknown>;
    if (Array.isArray(value["Fn::Join"])) {
      const [delimiter, items] = value["Fn::Join"] as [string, unknown[]];
      return items.map(flattenForNag).join(delimiter);
    }
    if ("Fn::Sub" in value) return flattenForNag(value["Fn::Sub"]);
    if (Array.isArray(value["Fn::GetAtt"])) {
      const [resource, attribute] = value["Fn::GetAtt"] as [unknown, unknown];
      return `<${flattenForNag(resource)}.${flattenForNag(attribute)}>`;
    }
    if ("Fn::ImportValue" in value) return flattenForNag(value["Fn::ImportValue"]);
    if ("Ref" in value) return `<${flattenForNag(value.Ref)}>`;
  }
  return JSON.stringify(node);
}
