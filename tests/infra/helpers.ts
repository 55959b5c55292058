import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, type aws_iam as iam, aws_lambda as lambda, type Stack } from "aws-cdk-lib";
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

/** The major version of a Node.js runtime (`nodejs24.x` → 24), 0 for another runtime. */
export function nodeMajor(runtime: lambda.Runtime): number {
  return Number(/^nodejs(\d+)/.exec(runtime.name)?.[1] ?? 0);
}

/**
 * A Node.js runtime newer than nodejs24.x in `lambda.Runtime.ALL`, where cdk-nag's AwsSolutions-L1 looks for
 * the newest: the installed aws-cdk-lib's newest if it knows one (2.278 has nodejs26.x), or else `nodejs26.x`
 * declared as such an aws-cdk-lib declares it, until `restore()` takes it back out (the files of
 * tests/infra share a process).
 */
export function newerNodeRuntime(): { runtime: lambda.Runtime; restore: () => void } {
  const newest = lambda.Runtime.ALL.filter(
    (runtime) => runtime.family === lambda.RuntimeFamily.NODEJS,
  ).reduce((a, b) => (nodeMajor(b) > nodeMajor(a) ? b : a));
  if (nodeMajor(newest) > 24) return { runtime: newest, restore: () => {} };
  const declared = new lambda.Runtime("nodejs26.x", lambda.RuntimeFamily.NODEJS, {
    supportsInlineCode: true,
  });
  return {
    runtime: declared,
    restore: () => {
      lambda.Runtime.ALL.splice(lambda.Runtime.ALL.indexOf(declared), 1);
    },
  };
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
