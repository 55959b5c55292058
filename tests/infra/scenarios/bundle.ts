import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { cx_api as cxapi } from "aws-cdk-lib";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUNDLING } from "../../../infra/durable-workflows.ts";
import { createExamplesApp } from "../../../infra/stack.ts";
import { configToEnvironment } from "../../../lib/aws/config.ts";
import {
  createKit,
  deployStack,
  type Emulators,
  lambdaContext,
  ofType,
  type Stack,
} from "../../aws/harness/aws-stack.ts";
import { TEST_CREDENTIALS } from "../../aws/harness/free-port.ts";

/**
 * The functions exactly as `cdk deploy` uploads them: the examples stack is synthesized with bundling
 * (the construct's esbuild settings, local esbuild), and the bundle in the cloud assembly is imported
 * and driven against DynamoDB Local and fauxqs, configured from the variables the template sets.
 * The assembly is written under node_modules/.cache so that the bundle's external `@aws-sdk/*`
 * imports resolve, as the Lambda runtime's SDK does in AWS.
 */

interface LambdaResource {
  Properties: { Handler: string; Environment: { Variables: Record<string, unknown> } };
  Metadata: Record<string, unknown>;
}

const cacheDir = join(process.cwd(), "node_modules", ".cache");
let outdir: string;
let functions: LambdaResource[];
let bundleDir: string;
let emulators: Emulators;
let stack: Stack;
const savedEnv = { ...process.env };

function setUp(emulatorsOf: () => Emulators) {
  beforeAll(async () => {
    emulators = emulatorsOf();
    mkdirSync(cacheDir, { recursive: true });
    outdir = mkdtempSync(join(cacheDir, "tsworkflow-bundle-"));
    const { app } = createExamplesApp({
      env: {},
      outdir,
      builtinCloudFormationValidation: false,
      // What the CDK CLI sets: the template records each function's asset directory.
      context: { [cxapi.ASSET_RESOURCE_METADATA_ENABLED_CONTEXT]: true },
    });
    const assembly = app.synth();
    const template = assembly.getStackByName("TsWorkflowExamples").template as {
      Resources: Record<string, LambdaResource & { Type: string }>;
    };
    functions = Object.values(template.Resources).filter(
      (resource) => resource.Type === "AWS::Lambda::Function",
    );
    bundleDir = join(outdir, String(functions[0]?.Metadata["aws:asset:path"]));

    const kit = createKit(emulators);
    const values = configToEnvironment(kit.config);
    // The variables the template sets, with the values of this "deployment"; test-only extras after.
    const fromTemplate = Object.keys(functions[0]?.Properties.Environment.Variables ?? {}).filter(
      (name) => name !== "NODE_OPTIONS",
    );
    Object.assign(process.env, Object.fromEntries(fromTemplate.map((name) => [name, values[name]])), {
      AWS_REGION: kit.config.region,
      TSWORKFLOW_DYNAMODB_ENDPOINT: kit.config.endpoints.dynamodb,
      TSWORKFLOW_SQS_ENDPOINT: kit.config.endpoints.sqs,
      TSWORKFLOW_SCHEDULER_ENDPOINT: kit.config.endpoints.scheduler,
      TSWORKFLOW_S3_ENDPOINT: kit.config.endpoints.s3,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      POWERTOOLS_LOG_LEVEL: "SILENT",
    });
    // Importing the bundle is the cold start: it reads and validates the environment.
    const handlers = await import(pathToFileURL(join(bundleDir, "index.mjs")).href);
    stack = deployStack(emulators, { workflows: [] }, { kit, handlers });
  });

  afterAll(async () => {
    await stack?.stop();
    process.env = savedEnv;
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });
}

export function describeBundle(emulatorsOf: () => Emulators): void {
  describe("the bundle of the examples' functions", () => {
    setUp(emulatorsOf);

    it("is one esbuild bundle shared by the six functions, with a source map", () => {
      // Act
      const assets = new Set(functions.map((fn) => fn.Metadata["aws:asset:path"]));
      // Assess
      expect(functions.map((fn) => fn.Properties.Handler).sort()).toEqual([
        "index.reaperHandler",
        "index.startHandler",
        "index.stepHandler",
        "index.sweeperHandler",
        "index.webhookHandler",
        "index.workflowHandler",
      ]);
      expect(assets.size).toBe(1);
      expect(functions.every((fn) => fn.Metadata["aws:asset:is-bundled"] === true)).toBe(true);
      expect(existsSync(join(bundleDir, "index.mjs.map"))).toBe(true);
      expect(BUNDLING.forceDockerBundling).toBe(false);
    });

    it("leaves the AWS SDK v3 to the runtime and bundles everything else", () => {
      // Act
      const code = readFileSync(join(bundleDir, "index.mjs"), "utf8");
      const sources = (
        JSON.parse(readFileSync(join(bundleDir, "index.mjs.map"), "utf8")) as { sources: string[] }
      ).sources.map((source) => resolve(bundleDir, source));
      // Assess
      expect(code).toMatch(/from\s*"@aws-sdk\/client-dynamodb"/);
      expect(code).toMatch(/from\s*"@aws-sdk\/client-sqs"/);
      // S3 is imported on first use (a payload over 64 KB), not at cold start.
      expect(code).toMatch(/import\(\s*"@aws-sdk\/client-s3"\s*\)/);
      expect(code).not.toMatch(/from\s*"@aws-sdk\/client-s3"/);
      expect(sources.filter((source) => source.includes("node_modules/@aws-sdk/"))).toEqual([]);
      expect(sources.some((source) => source.endsWith("functions/examples.ts"))).toBe(true);
      expect(sources.some((source) => source.includes("node_modules/zod/"))).toBe(true);
    });

    it("exports the handlers the template names", async () => {
      const module = await import(pathToFileURL(join(bundleDir, "index.mjs")).href);
      for (const fn of functions) {
        expect(typeof module[fn.Properties.Handler.replace(/^index\./, "")]).toBe("function");
      }
    });

    it("starts the onboarding workflow through its start handler and runs it to completion", async () => {
      // Act
      const { runId, created } = await stack.invokeStart({
        workflow: "onboarding",
        args: ["user_bundle", "1s"],
      });
      const run = await stack.waitForStatus(runId, "completed");
      // Assess
      expect(created).toBe(true);
      expect(run.result).toBe("Onboarding complete");
      const events = await stack.events(runId);
      expect(ofType(events, "step_completed").map((event) => event.stepName)).toEqual([
        "send_welcome_email",
        "send_tips_email",
      ]);
      expect(ofType(events, "sleep_completed")).toHaveLength(1);
    });

    it("answers a sample SQS event on its workflow handler, failing what is not an activation toward the DLQ", async () => {
      // Prepare
      const record = (messageId: string, body: string, group = "run_unknown") => ({
        messageId,
        receiptHandle: `handle-${messageId}`,
        body,
        attributes: {
          ApproximateReceiveCount: "1",
          SentTimestamp: String(Date.now()),
          SenderId: "000000000000",
          ApproximateFirstReceiveTimestamp: String(Date.now()),
          MessageGroupId: group,
          MessageDeduplicationId: messageId,
        },
        messageAttributes: {},
        md5OfBody: "",
        eventSource: "aws:sqs",
        eventSourceARN: stack.queues.workflowQueueArn,
        awsRegion: "us-east-1",
      });
      const event = {
        Records: [
          record("m1", "not json", "poison"),
          record(
            "m2",
            JSON.stringify({ kind: "activation", task: { runId: "run_unknown", cause: { kind: "wake" } } }),
          ),
        ],
      } as SQSEvent;
      // Act
      const response = await stack.workflowHandler(event, lambdaContext("tsworkflow-workflow"));
      // Assess
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: "m1" }] });
    });
    it("answers a Function URL request on its webhook handler, refusing what is not a known token", async () => {
      // Prepare
      const module = await import(pathToFileURL(join(bundleDir, "index.mjs")).href);
      const request = (method: string, rawPath: string) => ({
        rawPath,
        body: "{}",
        headers: {},
        requestContext: { http: { method } },
      });
      // Act
      const wrongMethod = await module.webhookHandler(request("GET", "/hooks/abc"), lambdaContext("webhook"));
      const unknownToken = await module.webhookHandler(
        request("POST", "/hooks/unknown-token"),
        lambdaContext("webhook"),
      );
      // Assess
      expect(wrongMethod.statusCode).toBe(404);
      expect(unknownToken.statusCode).toBe(404);
      expect(unknownToken.headers["content-type"]).toBe("application/json");
    });
  });
}
