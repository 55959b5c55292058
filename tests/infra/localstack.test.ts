import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { Token } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { afterEach, describe, expect, it } from "vitest";
import { createExamplesApp, EXAMPLES_STACK_NAME } from "../../infra/stack.ts";
import {
  AWS_CDK_LOCAL_PACKAGE,
  cdklocalEnvironment,
  checkLocalStack,
  clientConfigFromOutputs,
  deployCommands,
  LOCALSTACK_ACCOUNT,
  localStackSettings,
  outputValue,
  REPO_ROOT,
  REQUIRED_SERVICES,
  readStackOutputs,
} from "../../local/localstack/settings.ts";
import { freePort } from "../aws/harness/free-port.ts";
import { testOutdir } from "./helpers.ts";

/**
 * What can be checked of the LocalStack scripts without Docker: their settings, the commands and
 * endpoints they use, the health check against a stand-in server, the compose file, and a synth of
 * the examples app with the LocalStack settings.
 */

const NO_BUNDLING = { "aws:cdk:bundling-stacks": [] };
let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A stand-in for LocalStack's health endpoint on a free loopback port. */
async function fakeLocalStack(services: Record<string, string>): Promise<string> {
  const port = await freePort();
  server = createServer((request, response) => {
    if (request.url === "/_localstack/health") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ edition: "community", services }));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server?.listen(port, "127.0.0.1", resolve));
  return `http://127.0.0.1:${port}`;
}

describe("the LocalStack settings", () => {
  it("default to LocalStack's edge port and us-east-1, and follow LOCALSTACK_ENDPOINT and AWS_REGION", () => {
    expect(localStackSettings({})).toMatchObject({
      endpoint: "http://localhost:4566",
      region: "us-east-1",
      stackName: EXAMPLES_STACK_NAME,
    });
    expect(
      localStackSettings({ LOCALSTACK_ENDPOINT: "http://10.0.0.5:4566/", AWS_REGION: "eu-west-1" }),
    ).toMatchObject({
      endpoint: "http://10.0.0.5:4566",
      region: "eu-west-1",
    });
  });

  it("rejects an endpoint that is not a URL, naming it", () => {
    expect(() => localStackSettings({ LOCALSTACK_ENDPOINT: "localstack" })).toThrow(/it is "localstack"/);
  });

  it("write the outputs under cdk.out, which git ignores", () => {
    const { outputsFile } = localStackSettings({});
    expect(outputsFile).toBe(join(REPO_ROOT, "cdk.out", "localstack-outputs.json"));
    expect(readFileSync(join(REPO_ROOT, ".gitignore"), "utf8")).toMatch(/^cdk\.out\/?$/m);
  });
});

describe("npm run localstack:deploy", () => {
  it("runs cdklocal bootstrap for LocalStack's account, then deploys the examples stack writing its outputs", () => {
    // Prepare
    const settings = localStackSettings({});
    // Act
    const commands = deployCommands(settings);
    // Assess
    const cdklocal = ["--yes", "--package", AWS_CDK_LOCAL_PACKAGE, "cdklocal"];
    expect(AWS_CDK_LOCAL_PACKAGE).toMatch(/^aws-cdk-local@3\.\d+\.\d+$/);
    expect(commands).toEqual([
      { command: "npx", args: [...cdklocal, "bootstrap", "aws://000000000000/us-east-1"] },
      {
        command: "npx",
        args: [
          ...cdklocal,
          "deploy",
          "TsWorkflowExamples",
          "--require-approval",
          "never",
          "--outputs-file",
          settings.outputsFile,
        ],
      },
    ]);
  });

  it("points cdklocal at LocalStack with fake credentials, without the user's profile", () => {
    // Prepare
    const settings = localStackSettings({ LOCALSTACK_ENDPOINT: "http://localhost:4566" });
    // Act
    const env = cdklocalEnvironment(settings, {
      PATH: "/usr/bin",
      AWS_PROFILE: "production",
      AWS_SESSION_TOKEN: "secret",
    });
    // Assess
    expect(env).toMatchObject({
      PATH: "/usr/bin",
      AWS_ENDPOINT_URL: "http://localhost:4566",
      AWS_REGION: "us-east-1",
      AWS_DEFAULT_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      TSWORKFLOW_LOCALSTACK: "1",
      NODE_PATH: `${REPO_ROOT}node_modules`,
    });
    expect(env.AWS_PROFILE).toBeUndefined();
    expect(env.AWS_SESSION_TOKEN).toBeUndefined();
  });
});

describe("the LocalStack health check", () => {
  it("passes when every service the stack needs is there", async () => {
    const endpoint = await fakeLocalStack(
      Object.fromEntries(REQUIRED_SERVICES.map((name) => [name, "available"])),
    );
    await expect(checkLocalStack(endpoint)).resolves.toBeUndefined();
  });

  it("names the services LocalStack lacks", async () => {
    const services = Object.fromEntries(REQUIRED_SERVICES.map((name) => [name, "running"]));
    services.scheduler = "disabled";
    delete services.lambda;
    const endpoint = await fakeLocalStack(services);
    await expect(checkLocalStack(endpoint)).rejects.toThrow(/lacks lambda, scheduler/);
  });

  it("says how to start LocalStack when nothing answers", async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    await expect(checkLocalStack(endpoint, { timeoutMs: 1000 })).rejects.toThrow(
      new RegExp(
        `LocalStack is not reachable at ${endpoint}.*docker compose -f local/localstack/docker-compose.yml up -d`,
      ),
    );
  });
});

describe("the compose file", () => {
  const compose = readFileSync(join(REPO_ROOT, "local", "localstack", "docker-compose.yml"), "utf8");

  it("publishes the edge port the scripts use, on loopback only", () => {
    expect(compose).toContain(`"127.0.0.1:4566:4566"`);
    expect(new URL(localStackSettings({}).endpoint).port).toBe("4566");
  });

  it("enables every service the health check asks for, and gives Lambda the Docker socket and network", () => {
    const services = compose.match(/^\s*SERVICES:\s*(\S+)\s*$/m)?.[1]?.split(",") ?? [];
    for (const service of REQUIRED_SERVICES) expect(services).toContain(service);
    expect(compose).toContain("/var/run/docker.sock:/var/run/docker.sock");
    const project = compose.match(/^name:\s*(\S+)\s*$/m)?.[1];
    expect(compose).toContain(`LAMBDA_DOCKER_NETWORK: ${project}_default`);
  });
});

describe("a synth with the LocalStack settings", () => {
  it("targets LocalStack's account, passes the Lambda endpoint override, and passes cdk-nag", () => {
    // Prepare
    const { app, stack } = createExamplesApp({
      env: {
        TSWORKFLOW_LOCALSTACK: "1",
        TSWORKFLOW_LOCALSTACK_LAMBDA_ENDPOINT: "http://localhost.localstack.cloud:4566",
        AWS_REGION: "us-east-1",
      },
      context: NO_BUNDLING,
      outdir: testOutdir(),
      builtinCloudFormationValidation: false,
    });
    // Act
    const template = Template.fromStack(stack);
    // Assess
    expect(stack.account).toBe(LOCALSTACK_ACCOUNT);
    expect(stack.region).toBe("us-east-1");
    template.allResourcesProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: {
          TSWORKFLOW_DYNAMODB_ENDPOINT: "http://localhost.localstack.cloud:4566",
          TSWORKFLOW_SQS_ENDPOINT: "http://localhost.localstack.cloud:4566",
          TSWORKFLOW_SCHEDULER_ENDPOINT: "http://localhost.localstack.cloud:4566",
        },
      },
    });
    expect(() => app.synth()).not.toThrow();
  });

  it("leaves AWS deployments environment-agnostic, without endpoint overrides", () => {
    const { stack } = createExamplesApp({
      env: {},
      context: NO_BUNDLING,
      outdir: testOutdir(),
      builtinCloudFormationValidation: false,
    });
    const variables = Object.values(Template.fromStack(stack).findResources("AWS::Lambda::Function")).map(
      (fn) => fn.Properties.Environment.Variables,
    );
    expect(Token.isUnresolved(stack.account)).toBe(true);
    expect(Token.isUnresolved(stack.region)).toBe(true);
    for (const environment of variables) expect(environment.TSWORKFLOW_DYNAMODB_ENDPOINT).toBeUndefined();
  });

  it("gives the smoke test the table and queue from the stack's outputs", () => {
    // Prepare: outputs as `cdk deploy --outputs-file` writes them (logical id → value).
    const { stack } = createExamplesApp({
      env: { TSWORKFLOW_LOCALSTACK: "1" },
      context: NO_BUNDLING,
      outdir: testOutdir(),
      builtinCloudFormationValidation: false,
    });
    const outputs = Object.fromEntries(
      Object.keys(Template.fromStack(stack).findOutputs("*")).map((id) => [id, `value of ${id}`]),
    );
    const settings = localStackSettings({});
    // Act
    const config = clientConfigFromOutputs(outputs, settings);
    // Assess
    expect(config.tableName).toMatch(/^value of WorkflowsTableName[0-9A-F]{8}$/);
    expect(config.workflowQueueUrl).toMatch(/^value of WorkflowsWorkflowQueueUrl[0-9A-F]{8}$/);
    expect(config.endpoints).toEqual({ dynamodb: "http://localhost:4566", sqs: "http://localhost:4566" });
    expect(outputValue(outputs, "StepQueueUrl")).toMatch(/StepQueueUrl/);
  });

  it("tells the user to deploy first when there are no outputs", () => {
    const settings = {
      ...localStackSettings({}),
      outputsFile: join(REPO_ROOT, "cdk.out", "no-such-file.json"),
    };
    expect(() => readStackOutputs(settings)).toThrow(/run npm run localstack:deploy first/);
  });
});
