import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, type aws_iam as iam, type Stack } from "aws-cdk-lib";
import type { Template } from "aws-cdk-lib/assertions";

/** The test file's synth output (an app without `outdir` leaves a `cdk.out*` in /tmp). */
let outRoot: string | undefined;

/** Removes the synth output of the test file that ends (synth-output-cleanup.ts, run with each file). */
export function removeSynthOutput(): void {
  if (outRoot) rmSync(outRoot, { recursive: true, force: true });
  outRoot = undefined;
}

/** A new, empty directory for one app's synth output, removed when the test file ends. */
export function testOutdir(): string {
  outRoot ??= mkdtempSync(join(tmpdir(), "tsworkflow-cdk-test-"));
  return mkdtempSync(join(outRoot, "out-"));
}

/**
 * A CDK app for tests. Bundling is skipped unless asked for (esbuild runs once per function otherwise),
 * and so is CDK's built-in CloudFormation schema validation (tens of seconds per synth; `npm run synth`
 * keeps it).
 */
export function testApp(
  options: { bundle?: boolean; outdir?: string; context?: Record<string, unknown> } = {},
): App {
  return new App({
    builtinCloudFormationValidation: false,
    outdir: options.outdir ?? testOutdir(),
    context: {
      ...(options.bundle ? {} : { "aws:cdk:bundling-stacks": [] }),
      ...options.context,
    },
  });
}

export interface PolicyStatement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
}

/** The statements of every inline policy attached to `grantee`'s role. */
export function statementsOf(template: Template, stack: Stack, grantee: iam.IGrantable): PolicyStatement[] {
  const role = grantee.grantPrincipal as iam.Role;
  const roleId = stack.resolve((role.node.defaultChild as iam.CfnRole).logicalId) as string;
  return Object.values(template.findResources("AWS::IAM::Policy"))
    .filter((policy) =>
      (policy.Properties.Roles as { Ref: string }[]).some((reference) => reference.Ref === roleId),
    )
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as PolicyStatement[]);
}

/** Every action the statements allow, sorted. */
export function actionsOf(statements: PolicyStatement[]): string[] {
  return statements
    .filter((statement) => statement.Effect === "Allow")
    .flatMap((statement) => (Array.isArray(statement.Action) ? statement.Action : [statement.Action]))
    .sort();
}

/** The resources of the statements that allow `action`. */
export function resourcesFor(statements: PolicyStatement[], action: string): unknown[] {
  return statements
    .filter((statement) => statement.Effect === "Allow")
    .filter((statement) =>
      (Array.isArray(statement.Action) ? statement.Action : [statement.Action]).includes(action),
    )
    .flatMap((statement) => (Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource]));
}
