/**
 * tsworkflow/cdk: the `DurableWorkflows` construct that provisions tsworkflow on AWS (DynamoDB, SQS,
 * EventBridge Scheduler, Lambda, CloudWatch alarms). Loads aws-cdk-lib; the other entries do not.
 */

export type { DurableWorkflowsProps, EndpointOverrides, HandlerNames } from "./durable-workflows.ts";
export { BUNDLING, DEFAULT_HANDLER_NAMES, DurableWorkflows, LIVE_ALIAS } from "./durable-workflows.ts";
export type { KitAliases } from "./functions.ts";
