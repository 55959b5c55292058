import {
  Duration,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_lambda_nodejs as nodejs,
} from "aws-cdk-lib";
import type { Construct } from "constructs";
import { BUNDLING } from "./bundling.ts";
import type { DurableWorkflowsProps, Settings } from "./props.ts";
import { acknowledgeTestedRuntime } from "./runtime.ts";

/** The alias every event source, schedule and caller uses: each deploy publishes a version and moves it. */
export const LIVE_ALIAS = "live";

export interface FunctionOptions {
  memorySize: number;
  timeout: Duration;
  description: string;
  environment?: Record<string, string>;
}

/** One function: its own log group and role (logs to its group only), bundled with the local esbuild. */
export function createFunction(
  scope: Construct,
  name: string,
  handler: string,
  settings: Settings,
  options: FunctionOptions,
): nodejs.NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${name}Logs`, {
    retention: settings.logRetention,
    removalPolicy: settings.removalPolicy,
  });
  // An explicit role instead of AWSLambdaBasicExecutionRole: logs go to this function's group only.
  const role = new iam.Role(scope, `${name}Role`, {
    assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
    description: `Execution role of the tsworkflow ${name.toLowerCase()} function`,
  });
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
      resources: [logGroup.logGroupArn],
    }),
  );
  const fn = new nodejs.NodejsFunction(scope, `${name}Function`, {
    entry: settings.entry,
    handler,
    description: options.description,
    runtime: settings.runtime,
    architecture: lambda.Architecture.ARM_64,
    memorySize: options.memorySize,
    timeout: options.timeout,
    role,
    logGroup,
    environment: options.environment ?? {},
    bundling: BUNDLING,
    ...(settings.tracing ? { tracing: lambda.Tracing.ACTIVE } : {}),
  });
  acknowledgeTestedRuntime(fn, settings.runtime);
  return fn;
}

/** The function's `live` alias, on the version this deploy published. */
export function liveAlias(fn: nodejs.NodejsFunction): lambda.Alias {
  return new lambda.Alias(fn, "Live", { aliasName: LIVE_ALIAS, version: fn.currentVersion });
}

/** The kit's functions, one per handler of the entry (the webhook function only with `webhooks`). */
export interface KitFunctions {
  workflow: nodejs.NodejsFunction;
  step: nodejs.NodejsFunction;
  start: nodejs.NodejsFunction;
  webhook: nodejs.NodejsFunction | undefined;
  sweeper: nodejs.NodejsFunction;
  reaper: nodejs.NodejsFunction;
}

/** Creates the kit's functions, each with `environment` and its own memory, timeout and description. */
export function createKitFunctions(
  scope: Construct,
  settings: Settings,
  props: Pick<DurableWorkflowsProps, "webhooks" | "webhookSecret">,
  environment: Record<string, string>,
): KitFunctions {
  const create = (name: string, handler: string, options: FunctionOptions) =>
    createFunction(scope, name, handler, settings, {
      ...options,
      environment: { ...environment, ...options.environment },
    });
  return {
    workflow: create("Workflow", settings.handlerNames.workflow, {
      memorySize: settings.memorySize,
      timeout: settings.workflowTimeout,
      description: "tsworkflow: runs activations from the FIFO workflow queue",
    }),
    step: create("Step", settings.handlerNames.step, {
      memorySize: settings.stepMemorySize,
      timeout: settings.stepTimeout,
      description: "tsworkflow: runs step attempts and forwards timers from the step queue",
    }),
    start: create("Start", settings.handlerNames.start, {
      memorySize: settings.memorySize,
      timeout: settings.startTimeout,
      description: "tsworkflow: starts runs for callers that invoke it",
    }),
    webhook: props.webhooks
      ? create("Webhook", settings.handlerNames.webhook, {
          memorySize: settings.memorySize,
          timeout: settings.startTimeout,
          description: "tsworkflow: resumes runs waiting on a webhook (POST /hooks/<token>)",
          ...(props.webhookSecret
            ? { environment: { TSWORKFLOW_WEBHOOK_SECRET: props.webhookSecret.secretValue.unsafeUnwrap() } }
            : {}),
        })
      : undefined,
    sweeper: create("Sweeper", settings.handlerNames.sweeper, {
      memorySize: settings.memorySize,
      timeout: Duration.minutes(5),
      description: "tsworkflow: re-sends what runs miss (lost timers and messages)",
    }),
    reaper: create("Reaper", settings.handlerNames.reaper, {
      memorySize: settings.memorySize,
      timeout: Duration.minutes(5),
      description: "tsworkflow: deletes what is left of expired runs",
    }),
  };
}

/** The `live` alias of each function. */
export interface KitAliases {
  readonly workflow: lambda.Alias;
  readonly step: lambda.Alias;
  readonly start: lambda.Alias;
  readonly webhook: lambda.Alias | undefined;
  readonly sweeper: lambda.Alias;
  readonly reaper: lambda.Alias;
}

/**
 * Publishes each function's `live` alias. Consumers first, producers last: the step function, then the
 * workflow function, then what starts runs, so that new messages rarely reach old code (and when they
 * do, the handlers retry with backoff).
 */
export function publishAliases(functions: KitFunctions): KitAliases {
  const step = liveAlias(functions.step);
  const workflow = liveAlias(functions.workflow);
  workflow.node.addDependency(step);
  const start = liveAlias(functions.start);
  start.node.addDependency(workflow);
  const webhook = functions.webhook ? liveAlias(functions.webhook) : undefined;
  webhook?.node.addDependency(workflow);
  return {
    workflow,
    step,
    start,
    webhook,
    sweeper: liveAlias(functions.sweeper),
    reaper: liveAlias(functions.reaper),
  };
}
