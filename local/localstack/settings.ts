/**
 * Where LocalStack is and how the scripts in this folder talk to it: `deploy.ts` (cdklocal bootstrap
 * and deploy of the examples stack) and `smoke.ts` (a run of the onboarding workflow through the
 * deployed stack). Pure functions, so that tests check them without Docker.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ClientConfig } from "../../lib/aws/config.ts";

/** The aws-cdk-local release the scripts run (through `npx --yes`: it is not a dependency of the repo). */
export const AWS_CDK_LOCAL_PACKAGE = "aws-cdk-local@3.0.4";

/** The account LocalStack uses for any credentials. */
export const LOCALSTACK_ACCOUNT = "000000000000";

/** The services the stack and `cdk bootstrap` need; the health check asks for each. */
export const REQUIRED_SERVICES = [
  "cloudformation",
  "s3",
  "ssm",
  "sts",
  "iam",
  "lambda",
  "logs",
  "dynamodb",
  "sqs",
  "scheduler",
  "cloudwatch",
] as const;

/** The repository root (the scripts run cdk from there, where cdk.json is). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The settings of one LocalStack deployment. */
export interface LocalStackSettings {
  /** The edge endpoint, as seen from this machine. */
  endpoint: string;
  region: string;
  /** Where `cdk deploy --outputs-file` writes the stack's outputs (cdk.out is ignored by git). */
  outputsFile: string;
  /** The name of the deployed stack. */
  stackName: string;
}

/**
 * The settings, from the environment: `LOCALSTACK_ENDPOINT` (default http://localhost:4566) and
 * `AWS_REGION` (default us-east-1).
 */
export function localStackSettings(
  env: Record<string, string | undefined> = process.env,
): LocalStackSettings {
  const endpoint = (env.LOCALSTACK_ENDPOINT ?? "http://localhost:4566").replace(/\/+$/, "");
  try {
    new URL(endpoint);
  } catch {
    throw new Error(
      `LOCALSTACK_ENDPOINT must be a URL such as http://localhost:4566; it is ${JSON.stringify(endpoint)}.`,
    );
  }
  return {
    endpoint,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1",
    outputsFile: `${REPO_ROOT}cdk.out/localstack-outputs.json`,
    stackName: "TsWorkflowExamples",
  };
}

/**
 * The environment of `cdklocal`: LocalStack's endpoint and fake credentials for the CLI, and
 * `TSWORKFLOW_LOCALSTACK=1` for infra/app.ts (LocalStack's account, see `createExamplesApp`).
 */
export function cdklocalEnvironment(
  settings: LocalStackSettings,
  base: Record<string, string | undefined> = process.env,
): Record<string, string> {
  const inherited = Object.fromEntries(
    Object.entries(base).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  // A profile would send the CLI to real AWS credentials and endpoints.
  delete inherited.AWS_PROFILE;
  delete inherited.AWS_SESSION_TOKEN;
  return {
    ...inherited,
    AWS_ENDPOINT_URL: settings.endpoint,
    AWS_REGION: settings.region,
    AWS_DEFAULT_REGION: settings.region,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    TSWORKFLOW_LOCALSTACK: "1",
    CDK_DISABLE_VERSION_CHECK: "1",
    CDK_DISABLE_CLI_TELEMETRY: "1",
    // cdklocal runs from npx's cache and loads the CDK CLI installed here.
    NODE_PATH: [`${REPO_ROOT}node_modules`, inherited.NODE_PATH].filter(Boolean).join(":"),
  };
}

/** The commands `npm run localstack:deploy` runs, in order. */
export function deployCommands(settings: LocalStackSettings): { command: string; args: string[] }[] {
  const cdklocal = (args: string[]) => ({
    command: "npx",
    args: ["--yes", "--package", AWS_CDK_LOCAL_PACKAGE, "cdklocal", ...args],
  });
  return [
    cdklocal(["bootstrap", `aws://${LOCALSTACK_ACCOUNT}/${settings.region}`]),
    cdklocal([
      "deploy",
      settings.stackName,
      "--require-approval",
      "never",
      "--outputs-file",
      settings.outputsFile,
    ]),
  ];
}

/**
 * Fails with what to do when LocalStack does not answer on `endpoint` or lacks a service the stack needs.
 */
export async function checkLocalStack(
  endpoint: string,
  options: { timeoutMs?: number; fetch?: typeof fetch } = {},
): Promise<void> {
  const url = `${endpoint}/_localstack/health`;
  let health: { services?: Record<string, string> };
  try {
    const response = await (options.fetch ?? fetch)(url, {
      signal: AbortSignal.timeout(options.timeoutMs ?? 3000),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    health = (await response.json()) as typeof health;
  } catch (error) {
    throw new Error(
      `LocalStack is not reachable at ${endpoint} (${url}: ${error instanceof Error ? error.message : String(error)}). ` +
        "Start it with: docker compose -f local/localstack/docker-compose.yml up -d (or set LOCALSTACK_ENDPOINT).",
    );
  }
  const missing = REQUIRED_SERVICES.filter((service) => {
    const status = health.services?.[service];
    return status === undefined || status === "disabled" || status === "error";
  });
  if (missing.length > 0) {
    throw new Error(
      `LocalStack at ${endpoint} lacks ${missing.join(", ")}: start it with local/localstack/docker-compose.yml, whose SERVICES lists them.`,
    );
  }
}

/** The outputs of `stackName` in the file `cdk deploy --outputs-file` wrote. */
export function readStackOutputs(settings: LocalStackSettings): Record<string, string> {
  let parsed: Record<string, Record<string, string>>;
  try {
    parsed = JSON.parse(readFileSync(settings.outputsFile, "utf8"));
  } catch (error) {
    throw new Error(
      `No stack outputs at ${settings.outputsFile} (${error instanceof Error ? error.message : String(error)}): run npm run localstack:deploy first.`,
    );
  }
  const outputs = parsed[settings.stackName];
  if (!outputs)
    throw new Error(`${settings.outputsFile} has no outputs of ${settings.stackName}: deploy it again.`);
  return outputs;
}

/**
 * The value of the construct's output `name` (`TableName`, `WorkflowQueueUrl`…). CloudFormation names
 * it `<construct id><name><8-hex hash>`.
 */
export function outputValue(outputs: Record<string, string>, name: string): string {
  const matches = Object.entries(outputs).filter(([key]) => key.replace(/[0-9A-F]{8}$/, "").endsWith(name));
  if (matches.length !== 1) {
    throw new Error(
      `Expected one output named *${name}, found ${matches.length} among ${Object.keys(outputs).join(", ") || "none"}.`,
    );
  }
  return (matches[0] as [string, string])[1];
}

/** The client configuration that reaches the deployed stack through LocalStack from this machine. */
export function clientConfigFromOutputs(
  outputs: Record<string, string>,
  settings: LocalStackSettings,
): ClientConfig {
  return {
    tableName: outputValue(outputs, "TableName"),
    workflowQueueUrl: outputValue(outputs, "WorkflowQueueUrl"),
    region: settings.region,
    endpoints: { dynamodb: settings.endpoint, sqs: settings.endpoint },
  };
}
