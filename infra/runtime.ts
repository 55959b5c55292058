import { aws_lambda as lambda, Validations } from "aws-cdk-lib";
import type { Construct } from "constructs";

/** The runtime tsworkflow's handlers are built and tested for: the default of the `runtime` property. */
export const TESTED_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** The oldest Node.js tsworkflow runs on (package.json `engines`). */
const OLDEST_NODE_MAJOR = 20;

/** `runtime` if the handlers can run on it (Node.js 20 or later), or a failure naming it. */
export function checkRuntime(runtime: lambda.Runtime, fail: (message: string) => never): lambda.Runtime {
  const major = Number(/^nodejs(\d+)/.exec(runtime.name)?.[1]);
  if (runtime.family !== lambda.RuntimeFamily.NODEJS || !(major >= OLDEST_NODE_MAJOR))
    fail(
      `runtime must be a Node.js runtime, ${lambda.Runtime.NODEJS_20_X.name} or later (the handlers are JavaScript; ${TESTED_RUNTIME.name}, the default, is the one they are tested on); it is ${JSON.stringify(runtime.name)}.`,
    );
  return runtime;
}

/**
 * cdk-nag's AwsSolutions-L1 wants the newest runtime the installed aws-cdk-lib knows, which moves on
 * without any change here; on the tested runtime the finding is acknowledged, with the way out. Another
 * runtime is the app's choice, and cdk-nag checks it as usual. The acknowledgement is CDK's own
 * (`Validations`), which cdk-nag 3 reads: no dependency on cdk-nag.
 */
export function acknowledgeTestedRuntime(fn: Construct, runtime: lambda.Runtime): void {
  if (runtime.name !== TESTED_RUNTIME.name) return;
  Validations.of(fn).acknowledge({
    id: "AwsSolutions-L1",
    reason: `${TESTED_RUNTIME.name} is the runtime tsworkflow's handlers are built and tested for; set the DurableWorkflows runtime property to move to a newer Node.js runtime.`,
  });
}
