import {
  type Duration,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_lambda_nodejs as nodejs,
} from "aws-cdk-lib";
import type { Construct } from "constructs";
import { BUNDLING } from "./bundling.ts";
import type { Settings } from "./props.ts";

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
  return new nodejs.NodejsFunction(scope, `${name}Function`, {
    entry: settings.entry,
    handler,
    description: options.description,
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: options.memorySize,
    timeout: options.timeout,
    role,
    logGroup,
    environment: options.environment ?? {},
    bundling: BUNDLING,
    ...(settings.tracing ? { tracing: lambda.Tracing.ACTIVE } : {}),
  });
}

/** The function's `live` alias, on the version this deploy published. */
export function liveAlias(fn: nodejs.NodejsFunction): lambda.Alias {
  return new lambda.Alias(fn, "Live", { aliasName: LIVE_ALIAS, version: fn.currentVersion });
}
