import { fileURLToPath } from "node:url";
import {
  App,
  type AppProps,
  RemovalPolicy,
  Stack,
  type StackProps,
  type aws_sns as sns,
  Validations,
} from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { Construct } from "constructs";
import { DurableWorkflows, type EndpointOverrides } from "./durable-workflows.ts";

/** The Lambda entry of the example workflows (onboarding, dashboard, process_order, basic, approval). */
export const EXAMPLES_ENTRY = fileURLToPath(new URL("../functions/examples.ts", import.meta.url));

/** The stack's name in CloudFormation (and in `cdk deploy <name>`). */
export const EXAMPLES_STACK_NAME = "TsWorkflowExamples";

/** Properties of {@link TsWorkflowExamplesStack}. */
export interface TsWorkflowExamplesStackProps extends StackProps {
  /**
   * The topic the alarms notify.
   * @default none
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Endpoint overrides for the functions (LocalStack versions that do not give Lambdas `AWS_ENDPOINT_URL`).
   * @default none
   */
  readonly endpoints?: EndpointOverrides;
}

/**
 * The example workflows (examples/) on AWS: one {@link DurableWorkflows} with `functions/examples.ts`
 * as its entry. Everything is removed with the stack (`RemovalPolicy.DESTROY`): these are examples,
 * not data to keep.
 */
export class TsWorkflowExamplesStack extends Stack {
  readonly workflows: DurableWorkflows;

  constructor(scope: Construct, id: string, props: TsWorkflowExamplesStackProps = {}) {
    super(scope, id, {
      description:
        "tsworkflow example workflows: DynamoDB, SQS, EventBridge Scheduler and three Lambda functions",
      ...props,
    });
    this.workflows = new DurableWorkflows(this, "Workflows", {
      entry: EXAMPLES_ENTRY,
      removalPolicy: RemovalPolicy.DESTROY,
      // examples/approval.ts waits for a manager's call to a webhook.
      webhooks: true,
      // functions/examples.ts declares a weekday schedule.
      schedules: true,
      ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}),
      ...(props.endpoints ? { endpoints: props.endpoints } : {}),
    });
  }
}

/** Options of {@link createExamplesApp}. */
export interface ExamplesAppOptions
  extends Pick<AppProps, "outdir" | "context" | "builtinCloudFormationValidation"> {
  /**
   * Where the settings are read from: `TSWORKFLOW_LOCALSTACK=1` deploys to LocalStack (fixed
   * account 000000000000, `TSWORKFLOW_LOCALSTACK_LAMBDA_ENDPOINT` as the functions' endpoint when set).
   * @default process.env
   */
  readonly env?: Record<string, string | undefined>;
}

/** The LocalStack account id (LocalStack accepts any credentials and uses this account). */
export const LOCALSTACK_ACCOUNT = "000000000000";

/**
 * The CDK app of infra/app.ts: the examples stack, with cdk-nag's AwsSolutions checks as a
 * validation plugin (an unacknowledged finding fails the synth).
 */
export function createExamplesApp(options: ExamplesAppOptions = {}): {
  app: App;
  stack: TsWorkflowExamplesStack;
} {
  const env = options.env ?? process.env;
  const app = new App({
    ...(options.outdir ? { outdir: options.outdir } : {}),
    ...(options.context ? { context: options.context } : {}),
    ...(options.builtinCloudFormationValidation === undefined
      ? {}
      : { builtinCloudFormationValidation: options.builtinCloudFormationValidation }),
  });
  const localstack = env.TSWORKFLOW_LOCALSTACK === "1" || app.node.tryGetContext("localstack") === "true";
  const endpoint = env.TSWORKFLOW_LOCALSTACK_LAMBDA_ENDPOINT;
  const stack = new TsWorkflowExamplesStack(app, EXAMPLES_STACK_NAME, {
    ...(localstack
      ? {
          env: {
            account: LOCALSTACK_ACCOUNT,
            region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1",
          },
          ...(endpoint ? { endpoints: { dynamodb: endpoint, sqs: endpoint, scheduler: endpoint } } : {}),
        }
      : {}),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
