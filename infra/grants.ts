/**
 * What the construct's `grant*()` methods give callers outside the kit (permissions.ts grants the kit's
 * own functions). The TSDoc of each method lists the actions.
 */

import { aws_iam as iam } from "aws-cdk-lib";
import type { DurableWorkflows } from "./durable-workflows.ts";
import {
  CLIENT_TABLE_ACTIONS,
  payloadObjects,
  READ_TABLE_ACTIONS,
  recurringSchedulesArn,
  tableAndIndexes,
} from "./permissions.ts";

export function grantStart(kit: DurableWorkflows, grantee: iam.IGrantable): iam.Grant {
  return kit.aliases.start
    .grantInvoke(grantee)
    .combine(allow(grantee, CLIENT_TABLE_ACTIONS, [kit.table.tableArn]))
    .combine(allow(grantee, ["s3:PutObject", "s3:GetObject"], [payloadObjects(kit.payloadBucket)]))
    .combine(allow(grantee, ["sqs:SendMessage"], [kit.workflowQueue.queueArn]));
}

export function grantRead(kit: DurableWorkflows, grantee: iam.IGrantable): iam.Grant {
  return allow(grantee, READ_TABLE_ACTIONS, tableAndIndexes(kit)).combine(
    allow(grantee, ["s3:GetObject"], [payloadObjects(kit.payloadBucket)]),
  );
}

export function grantRunControl(kit: DurableWorkflows, grantee: iam.IGrantable): iam.Grant {
  return grantStart(kit, grantee)
    .combine(grantRead(kit, grantee))
    .combine(allow(grantee, ["dynamodb:UpdateItem"], [kit.table.tableArn]));
}

export function grantScheduleControl(kit: DurableWorkflows, grantee: iam.IGrantable): iam.Grant {
  return grantStart(kit, grantee)
    .combine(allow(grantee, ["dynamodb:UpdateItem"], [kit.table.tableArn]))
    .combine(
      allow(
        grantee,
        ["scheduler:GetSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
        [recurringSchedulesArn(kit, kit.scheduleGroup.scheduleGroupName)],
      ),
    )
    .combine(kit.schedulerRole.grantPassRole(grantee.grantPrincipal));
}

function allow(grantee: iam.IGrantable, actions: readonly string[], resourceArns: string[]): iam.Grant {
  return iam.Grant.addToPrincipal({ grantee, actions: [...actions], resourceArns });
}
