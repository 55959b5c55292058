import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type App, type CfnElement, aws_iam as iam, Stack, aws_sqs as sqs, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { beforeAll, describe, expect, it } from "vitest";
import { DurableWorkflows } from "../../infra/durable-workflows.ts";
import { createExamplesApp, EXAMPLES_ENTRY, type TsWorkflowExamplesStack } from "../../infra/stack.ts";
import { MyStack } from "../fixtures/deploy-docs/infra/my-stack.ts";
import { newerNodeRuntime, testApp, testOutdir } from "./helpers.ts";

/**
 * cdk-nag 3 runs as a CDK validation plugin (`Validations.of(app).addPlugins(new AwsSolutionsChecks(app))`,
 * as infra/app.ts does); findings are acknowledged with `Validations.of(construct).acknowledge(...)`.
 * The examples app is synthesized once (bundling skipped: it does not change what the rules see).
 */

const NO_BUNDLING = { "aws:cdk:bundling-stacks": [] };
let app: App;
let stack: TsWorkflowExamplesStack;

/** Every acknowledgement recorded in the tree, with the path of the construct it was made on. */
function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ""),
          reason,
        })),
      ),
  );
}

beforeAll(() => {
  ({ app, stack } = createExamplesApp({
    env: {},
    outdir: testOutdir(),
    context: NO_BUNDLING,
    builtinCloudFormationValidation: false,
  }));
});

describe("cdk-nag AwsSolutions on the examples app", () => {
  it("synthesizes with the checks registered as a validation plugin and reports no violation", () => {
    // Act
    const assembly = app.synth();
    // Assess
    const report = JSON.parse(readFileSync(join(assembly.directory, "validation-report.json"), "utf8"));
    const violations = report.pluginReports.flatMap(
      (plugin: { violations?: unknown[] }) => plugin.violations ?? [],
    );
    expect(violations).toEqual([]);
  });

  it("finds no unacknowledged finding when the pack is run on the tree directly", () => {
    // Act
    const report = new AwsSolutionsChecks().validateScope(app);
    // Assess
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
    expect(report.success).toBe(true);
  });

  it("acknowledges only findings that cannot be avoided, each with a written reason", () => {
    // Prepare
    const group = stack.workflows.scheduleGroup.scheduleGroupName;
    const id = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const objects = `Resource::<${id(stack.workflows.payloadBucket)}.Arn>/runs/*`;
    const roles = ["Workflow", "Step", "Start", "Webhook", "Sweeper", "Reaper"];
    // Act
    const acknowledged = acknowledgements(app);
    // Assess
    expect(acknowledged.map(({ path, id }) => `${path} ${id}`).sort()).toEqual(
      [
        // The workflow and step functions activate runs: they create and delete timer schedules.
        ...["Workflow", "Step"].map(
          (role) =>
            `TsWorkflowExamples/Workflows/${role}Role AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${group}/*]`,
        ),
        // The examples declare a schedule (`schedules: true`): the sweeper manages schedule.* in the group.
        `TsWorkflowExamples/Workflows/SweeperRole AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${group}/schedule.*]`,
        ...roles.map((role) => `TsWorkflowExamples/Workflows/${role}Role AwsSolutions-IAM5[${objects}]`),
        `TsWorkflowExamples/Workflows/SweeperRole AwsSolutions-IAM5[Resource::<${id(stack.workflows.table)}.Arn>/index/*]`,
        "TsWorkflowExamples/Workflows/ReaperRole AwsSolutions-IAM5[Resource::*]",
        // On nodejs24.x, the runtime the handlers are tested on (tests/infra/runtime.test.ts).
        ...roles.map((role) => `TsWorkflowExamples/Workflows/${role}Function AwsSolutions-L1`),
        "TsWorkflowExamples/Workflows/PayloadBucket AwsSolutions-S1",
        "TsWorkflowExamples/Workflows/TimerDeadLetterQueue AwsSolutions-SQS3",
      ].sort(),
    );
    for (const { reason } of acknowledged) expect(reason.length).toBeGreaterThan(60);
  });

  it("acknowledges exactly the string cdk-nag reports for that wildcard", () => {
    // Prepare: a role with the workflow function's schedule statement and no acknowledgement.
    const probeApp = testApp();
    const probe = new Stack(probeApp, "Probe");
    const workflows = new DurableWorkflows(probe, "Workflows", { entry: EXAMPLES_ENTRY });
    const statement = (workflows.workflowFunction.role as iam.Role).node
      .findChild("DefaultPolicy")
      .node.findAll()
      .find((construct): construct is iam.CfnPolicy => construct instanceof iam.CfnPolicy);
    const document = probe.resolve(statement?.policyDocument) as { Statement: { Action: unknown }[] };
    const schedules = document.Statement.find((entry) => JSON.stringify(entry.Action).includes("scheduler:"));
    new iam.CfnPolicy(probe, "Copy", {
      policyName: "copy",
      roles: ["copy"],
      policyDocument: { Version: "2012-10-17", Statement: [schedules] },
    });
    // Act
    const report = new AwsSolutionsChecks().validateScope(probe);
    // Assess
    const onCopy = report.violations.filter((violation) =>
      violation.violatingResources.some((resource) => resource.constructPath === "Probe/Copy"),
    );
    expect(onCopy.map((violation) => violation.ruleName)).toEqual(
      acknowledgements(workflows.workflowFunction.role as iam.Role)
        .map(({ id }) => id)
        .filter((id) => id.includes(":scheduler:")),
    );
  });

  it("fails the synth on a finding nobody acknowledged", () => {
    // Prepare
    const unsafe = createExamplesApp({
      env: {},
      outdir: testOutdir(),
      context: NO_BUNDLING,
      builtinCloudFormationValidation: false,
    });
    new sqs.Queue(unsafe.stack, "PlainQueue");
    // Act
    const report = new AwsSolutionsChecks().validateScope(unsafe.app);
    // Assess
    expect(report.violations.map((violation) => violation.ruleName).sort()).toEqual([
      "AwsSolutions-SQS3",
      "AwsSolutions-SQS4",
    ]);
    expect(() => unsafe.app.synth()).toThrow(/AwsSolutions-SQS3/);
  });
});

describe("docs/deploy.md's stack (The construct in your app)", () => {
  const appRoot = join(import.meta.dirname, "../fixtures/deploy-docs");
  const files = ["src/onboarding.ts", "src/workflows-lambda.ts", "infra/my-stack.ts"];

  it.each(files)("shows %s as it is, so the stack checked here is the one a reader copies", (file) => {
    // Act
    const docs = readFileSync(join(import.meta.dirname, "../../docs/deploy.md"), "utf8");
    // Assess
    expect(docs).toContain(`\`\`\`ts\n${readFileSync(join(appRoot, file), "utf8")}\`\`\``);
  });

  it("synthesizes with cdk-nag's AwsSolutions as its cdk-nag section registers it, with no finding, on an aws-cdk-lib that knows a newer Node.js than 24", () => {
    // Prepare: the stack names its entry relative to the app's root, where `cdk synth` runs.
    const newer = newerNodeRuntime();
    const cwd = process.cwd();
    try {
      const app = testApp();
      process.chdir(appRoot);
      new MyStack(app, "MyStack", {});
      process.chdir(cwd);
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      // Act
      const report = new AwsSolutionsChecks().validateScope(app);
      // Assess
      expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
      expect(() => app.synth()).not.toThrow();
    } finally {
      process.chdir(cwd);
      newer.restore();
    }
  });
});
