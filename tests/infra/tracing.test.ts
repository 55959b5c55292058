import { Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { DurableWorkflows } from "../../infra/durable-workflows.ts";
import { EXAMPLES_ENTRY } from "../../infra/stack.ts";
import { testApp } from "./helpers.ts";

describe("the construct's tracing prop", () => {
  it("turns on X-Ray active tracing on every function of the kit, and cdk-nag finds nothing unacknowledged", () => {
    // Prepare
    const stack = new Stack(testApp(), "Traced");
    // Act
    const kit = new DurableWorkflows(stack, "Workflows", {
      entry: EXAMPLES_ENTRY,
      tracing: true,
      dashboard: true,
    });
    // Assess
    const functions = Template.fromStack(stack).findResources("AWS::Lambda::Function");
    const modes = Object.values(functions).map((fn) => fn.Properties.TracingConfig?.Mode);
    expect(modes).toHaveLength(kit.functions.length);
    expect(new Set(modes)).toEqual(new Set(["Active"]));
    const report = new AwsSolutionsChecks().validateScope(stack);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
  });

  it("leaves tracing off by default", () => {
    // Prepare
    const stack = new Stack(testApp(), "Untraced");
    // Act
    new DurableWorkflows(stack, "Workflows", { entry: EXAMPLES_ENTRY });
    // Assess
    const functions = Template.fromStack(stack).findResources("AWS::Lambda::Function");
    expect(Object.values(functions).map((fn) => fn.Properties.TracingConfig)).toEqual(
      Object.values(functions).map(() => undefined),
    );
  });
});
