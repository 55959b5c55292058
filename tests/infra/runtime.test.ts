import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type App, cx_api as cxapi, aws_lambda as lambda, Stack, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DurableWorkflows, type DurableWorkflowsProps } from "../../infra/durable-workflows.ts";
import { EXAMPLES_ENTRY } from "../../infra/stack.ts";
import { newerNodeRuntime, nodeMajor, testApp } from "./helpers.ts";

/**
 * The `runtime` property, and cdk-nag's AwsSolutions-L1 ("latest runtime"), which compares a function's
 * runtime with the newest Node.js of the installed aws-cdk-lib: the tests run with one newer than 24, as
 * a fresh app gets (see `newerNodeRuntime`).
 */

const KIT_FUNCTIONS = ["Workflow", "Step", "Start", "Sweeper", "Reaper"].map(
  (name) => `Test/Workflows/${name}Function/Resource`,
);
let newer: ReturnType<typeof newerNodeRuntime>;
let newest: lambda.Runtime;

beforeAll(() => {
  newer = newerNodeRuntime();
  newest = newer.runtime;
});

afterAll(() => newer.restore());

/** An app with the kit in stack `Test`, and cdk-nag's AwsSolutions registered as a validation plugin. */
function kitApp(props: Partial<DurableWorkflowsProps> = {}, app: App = testApp()) {
  const stack = new Stack(app, "Test");
  const workflows = new DurableWorkflows(stack, "Workflows", { entry: EXAMPLES_ENTRY, ...props });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack, workflows };
}

/** The constructs cdk-nag reports AwsSolutions-L1 on. */
function latestRuntimeFindings(app: App): string[] {
  const report = new AwsSolutionsChecks().validateScope(app);
  return report.violations
    .filter((violation) => violation.ruleName === "AwsSolutions-L1")
    .flatMap((violation) => violation.violatingResources.map((resource) => String(resource.constructPath)))
    .sort();
}

describe("the runtime of the kit's functions", () => {
  it("is nodejs24.x by default, with AwsSolutions-L1 acknowledged on each function in the cdk_nag metadata", () => {
    // Prepare
    const app = testApp();
    const stack = new Stack(app, "Test");
    new DurableWorkflows(stack, "Workflows", { entry: EXAMPLES_ENTRY });
    // What cdk-nag 2 read, and cdk-nag 3 writes into the template from the acknowledgements.
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { writeSuppressionsToCloudFormation: true }));
    // Act
    const template = app.synth().getStackByName("Test").template as {
      Resources: Record<string, { Type: string; Properties: { Runtime: string }; Metadata?: unknown }>;
    };
    // Assess
    const functions = Object.values(template.Resources).filter(
      (resource) => resource.Type === "AWS::Lambda::Function",
    );
    expect(functions).toHaveLength(5);
    for (const fn of functions) {
      expect(fn.Properties.Runtime).toBe("nodejs24.x");
      expect(fn.Metadata).toMatchObject({
        cdk_nag: {
          rules_to_suppress: expect.arrayContaining([
            {
              id: "AwsSolutions-L1",
              reason: expect.stringMatching(
                /^nodejs24\.x is the runtime tsworkflow's handlers are built and tested for; set the DurableWorkflows runtime property/,
              ),
            },
          ]),
        },
      });
    }
  });

  it("passes AwsSolutions-L1 when the installed aws-cdk-lib knows a newer Node.js than 24", () => {
    // Prepare: a plain function on nodejs24.x shows that the check fails it.
    const { app, stack } = kitApp();
    new lambda.CfnFunction(stack, "Plain", {
      runtime: "nodejs24.x",
      role: "arn:aws:iam::123456789012:role/plain",
      code: { zipFile: "exports.handler = async () => {};" },
    });
    // Act
    const findings = latestRuntimeFindings(app);
    // Assess
    expect(nodeMajor(newest)).toBeGreaterThan(24);
    expect(findings).toEqual(["Test/Plain"]);
  });

  it("synthesizes with the AwsSolutions plugin and no finding when the newest Node.js is newer than 24", () => {
    // Prepare
    const { app } = kitApp();
    // Act
    const assembly = app.synth();
    // Assess
    const report = JSON.parse(readFileSync(join(assembly.directory, "validation-report.json"), "utf8"));
    expect(
      report.pluginReports.flatMap((plugin: { violations?: unknown[] }) => plugin.violations ?? []),
    ).toEqual([]);
  });

  it("is the runtime given, with no acknowledgement: cdk-nag checks the app's choice as usual", () => {
    // Prepare
    const older = kitApp({ runtime: lambda.Runtime.NODEJS_22_X });
    const latest = kitApp({ runtime: newest });
    // Act
    const olderFindings = latestRuntimeFindings(older.app);
    const latestFindings = latestRuntimeFindings(latest.app);
    // Assess
    expect(older.workflows.functions.map((fn) => fn.runtime.name)).toEqual(Array(5).fill("nodejs22.x"));
    expect(olderFindings).toEqual([...KIT_FUNCTIONS].sort());
    expect(latest.workflows.functions.map((fn) => fn.runtime.name)).toEqual(Array(5).fill(newest.name));
    expect(latestFindings).toEqual([]);
  });

  it.each([
    [
      lambda.Runtime.PYTHON_3_13,
      /runtime must be a Node\.js runtime, nodejs20\.x or later .*; it is "python3\.13"\./,
    ],
    [
      lambda.Runtime.NODEJS_18_X,
      /runtime must be a Node\.js runtime, nodejs20\.x or later .*; it is "nodejs18\.x"\./,
    ],
    [lambda.Runtime.PROVIDED_AL2023, /it is "provided\.al2023"\./],
  ])("refuses %s with a ConfigurationError naming it", (runtime, message) => {
    expect(() => kitApp({ runtime })).toThrow(message);
    expect(() => kitApp({ runtime })).toThrow(expect.objectContaining({ name: "ConfigurationError" }));
  });

  it("bundles the entry for the runtime's Node.js", () => {
    // Prepare: `using` is kept by esbuild for node26 and rewritten for node24.
    const entry = join(import.meta.dirname, "../fixtures/runtime-target/entry.ts");
    const bundle = (runtime?: lambda.Runtime) => {
      const app = testApp({
        bundle: true,
        context: { [cxapi.ASSET_RESOURCE_METADATA_ENABLED_CONTEXT]: true },
      });
      const stack = new Stack(app, "Test");
      const workflows = new DurableWorkflows(stack, "Workflows", { entry, ...(runtime ? { runtime } : {}) });
      const resource = workflows.workflowFunction.node.defaultChild as lambda.CfnFunction;
      const assetPath = resource.getMetadata(cxapi.ASSET_RESOURCE_METADATA_PATH_KEY) as string;
      return readFileSync(join(app.synth().directory, assetPath, "index.mjs"), "utf8");
    };
    // Act
    const onDefault = bundle();
    const onNewest = bundle(newest);
    // Assess
    expect(onDefault).not.toMatch(/\busing\b/);
    expect(onNewest).toMatch(/\busing\b/);
  });
});
