/**
 * The Lambda entry of the example workflows (examples/): the CDK construct bundles an entry file that
 * exports these handlers (the webhook handler serves `POST /hooks/<token>` behind a Function URL). A user's entry file looks the same with their workflows.
 * Configuration comes from the environment the construct sets (see lib/aws/config.ts).
 */
import { approvalOrder } from "../examples/approval.ts";
import { basicWorkflow } from "../examples/basic-workflow.ts";
import { onboarding } from "../examples/onboarding.ts";
import { processOrder } from "../examples/order.ts";
import { dashboard } from "../examples/parallel.ts";
import { createHandlers } from "../lib/aws/lambda/handlers.ts";
import { awsSchedules } from "../lib/aws/schedules.ts";
import { schedule } from "../lib/schedules/schedule.ts";

/** A weekday dashboard at 9:00 Paris time: an EventBridge Scheduler schedule (the stack sets `schedules: true`). */
const weekdayDashboard = schedule("weekday-dashboard", dashboard, {
  cron: "0 9 * * MON-FRI",
  timezone: "Europe/Paris",
  args: ["user_ops"],
  overlap: "skip",
});

export const { workflowHandler, stepHandler, startHandler, webhookHandler, sweeperHandler, reaperHandler } =
  createHandlers({
    workflows: [onboarding, dashboard, processOrder, basicWorkflow, approvalOrder],
    schedules: awsSchedules([weekdayDashboard]),
  });
