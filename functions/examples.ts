/**
 * The Lambda entry of the example workflows (examples/): the CDK construct bundles an entry file that
 * exports exactly these three handlers. A user's entry file looks the same with their workflows.
 * Configuration comes from the environment the construct sets (see lib/aws/config.ts).
 */
import { basicWorkflow } from "../examples/basic-workflow.ts";
import { onboarding } from "../examples/onboarding.ts";
import { processOrder } from "../examples/order.ts";
import { dashboard } from "../examples/parallel.ts";
import { createHandlers } from "./handlers.ts";

export const { workflowHandler, stepHandler, startHandler } = createHandlers({
  workflows: [onboarding, dashboard, processOrder, basicWorkflow],
});
