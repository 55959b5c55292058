import {
  type CfnElement,
  Duration,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  RemovalPolicy,
  Stack,
  aws_secretsmanager as secretsmanager,
  aws_sns as sns,
} from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import type { IConstruct } from "constructs";
import { beforeAll, describe, expect, it } from "vitest";
import { DurableWorkflows, type DurableWorkflowsProps } from "../../infra/durable-workflows.ts";
import { EXAMPLES_ENTRY } from "../../infra/stack.ts";
import { createTableInput, TABLE_SCHEMA } from "../../lib/adapters/aws/table-schema.ts";
import { configToEnvironment, loadClientConfig, loadConfig } from "../../lib/aws/config.ts";
import { actionsOf, type PolicyStatement, resourcesFor, statementsOf, testApp } from "./helpers.ts";

/**
 * The construct's template, synthesized once for the file (bundling skipped: the bundle is tested in
 * bundle.test.ts), with a caller that is granted `grantStart`.
 */

let stack: Stack;
let workflows: DurableWorkflows;
let caller: lambda.Function;
let operator: lambda.Function;
let template: Template;
const ref = (value: unknown) => stack.resolve(value);

beforeAll(() => {
  const app = testApp();
  stack = new Stack(app, "Test");
  workflows = new DurableWorkflows(stack, "Workflows", { entry: EXAMPLES_ENTRY });
  caller = new lambda.Function(stack, "Caller", {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: "index.handler",
    code: lambda.Code.fromInline("export const handler = async () => {};"),
  });
  workflows.grantStart(caller);
  operator = new lambda.Function(stack, "Operator", {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: "index.handler",
    code: lambda.Code.fromInline("export const handler = async () => {};"),
  });
  workflows.grantRunControl(operator);
  template = Template.fromStack(stack);
});

/** The properties of the resource `construct` created. */
// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are untyped JSON
function resourceOf(type: string, construct: IConstruct): any {
  const logicalId = stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const resource = template.findResources(type)[logicalId];
  if (!resource) throw new Error(`No ${type} ${logicalId} in the template`);
  return resource.Properties;
}

function statements(grantee: { grantPrincipal: unknown }): PolicyStatement[] {
  return statementsOf(template, stack, grantee as lambda.IFunction);
}

describe("the DynamoDB table", () => {
  it("has exactly the key schema, indexes and attributes of TABLE_SCHEMA", () => {
    // Prepare
    const expected = createTableInput("unused");
    // Act
    const tables = Object.values(template.findResources("AWS::DynamoDB::Table"));
    // Assess
    expect(tables).toHaveLength(1);
    const properties = tables[0]?.Properties;
    expect(properties.KeySchema).toEqual(expected.KeySchema);
    expect(new Set(properties.AttributeDefinitions.map(JSON.stringify))).toEqual(
      new Set(expected.AttributeDefinitions?.map((definition) => JSON.stringify(definition))),
    );
    expect(properties.GlobalSecondaryIndexes).toEqual(expected.GlobalSecondaryIndexes);
  });

  it("is on demand, with point-in-time recovery and TTL on the schema's attribute", () => {
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      BillingMode: TABLE_SCHEMA.billingMode,
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: TABLE_SCHEMA.ttlAttribute, Enabled: true },
    });
  });

  it("is retained when it leaves the stack by default", () => {
    template.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
  });
});

describe("the queues", () => {
  it("creates a FIFO workflow queue, deduplicated by id per run, with a FIFO DLQ after 5 receives", () => {
    template.hasResourceProperties("AWS::SQS::Queue", {
      FifoQueue: true,
      ContentBasedDeduplication: false,
      DeduplicationScope: "messageGroup",
      FifoThroughputLimit: "perMessageGroupId",
      VisibilityTimeout: 180,
      RedrivePolicy: {
        deadLetterTargetArn: ref(workflows.workflowDeadLetterQueue.queueArn),
        maxReceiveCount: 5,
      },
    });
    expect(ref(workflows.workflowDeadLetterQueue.fifo)).toBe(true);
  });

  it("creates a standard step queue with its own DLQ", () => {
    template.hasResourceProperties("AWS::SQS::Queue", {
      FifoQueue: Match.absent(),
      VisibilityTimeout: 1800,
      RedrivePolicy: { deadLetterTargetArn: ref(workflows.stepDeadLetterQueue.queueArn), maxReceiveCount: 5 },
    });
    expect(workflows.stepQueue.fifo).toBe(false);
    expect(workflows.stepDeadLetterQueue.fifo).toBe(false);
  });

  it("makes each visibility timeout six times its function's timeout", () => {
    // Act
    const workflowQueue = resourceOf("AWS::SQS::Queue", workflows.workflowQueue);
    const stepQueue = resourceOf("AWS::SQS::Queue", workflows.stepQueue);
    const workflowFunction = resourceOf("AWS::Lambda::Function", workflows.workflowFunction);
    const stepFunction = resourceOf("AWS::Lambda::Function", workflows.stepFunction);
    // Assess
    expect(workflowQueue.VisibilityTimeout).toBe(workflowFunction.Timeout * 6);
    expect(stepQueue.VisibilityTimeout).toBe(stepFunction.Timeout * 6);
  });

  it("encrypts every queue and denies requests without TLS", () => {
    const queues = Object.values(template.findResources("AWS::SQS::Queue"));
    expect(queues).toHaveLength(5);
    for (const queue of queues) expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
    const policies = Object.values(template.findResources("AWS::SQS::QueuePolicy"));
    expect(policies).toHaveLength(5);
    for (const policy of policies) {
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({
          Effect: "Deny",
          Action: "sqs:*",
          Condition: { Bool: { "aws:SecureTransport": "false" } },
        }),
      );
    }
  });
});

describe("the timers", () => {
  it("creates a schedule group whose name the workflow function receives", () => {
    const name = workflows.scheduleGroup.scheduleGroupName;
    template.hasResourceProperties("AWS::Scheduler::ScheduleGroup", { Name: name });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Handler: "index.workflowHandler",
      Environment: { Variables: Match.objectLike({ TSWORKFLOW_SCHEDULE_GROUP: name }) },
    });
  });

  it("gives EventBridge Scheduler a role that only sends to the step queue, for this account's group only", () => {
    // Act
    const role = Object.values(template.findResources("AWS::IAM::Role")).find(
      (candidate) =>
        candidate.Properties.AssumeRolePolicyDocument.Statement[0].Principal.Service ===
        "scheduler.amazonaws.com",
    );
    // Assess
    expect(role?.Properties.AssumeRolePolicyDocument.Statement[0].Condition).toEqual({
      StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } },
      ArnEquals: { "aws:SourceArn": ref(workflows.scheduleGroup.scheduleGroupArn) },
    });
    const allowed = statements(workflows.schedulerRole);
    expect(actionsOf(allowed)).toEqual(["sqs:SendMessage"]);
    expect(resourcesFor(allowed, "sqs:SendMessage")).toEqual([
      ref(workflows.stepQueue.queueArn),
      ref(workflows.timerDeadLetterQueue.queueArn),
    ]);
  });

  it("gives the functions the timer DLQ that every schedule names, and alarms on any message in it", () => {
    // The schedules themselves are made at run time: tests/aws/scenarios/timers.ts reads their RetryPolicy and DeadLetterConfig.
    template.hasResourceProperties("AWS::Lambda::Function", {
      Handler: "index.workflowHandler",
      Environment: {
        Variables: Match.objectLike({
          TSWORKFLOW_TIMER_DLQ_ARN: ref(workflows.timerDeadLetterQueue.queueArn),
        }),
      },
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: ref(workflows.timerDeadLetterQueue.queueName) }],
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
    });
  });
});

describe("the payload bucket", () => {
  it("is encrypted, private and TLS only, retained by default, and cleans incomplete uploads", () => {
    const bucket = resourceOf("AWS::S3::Bucket", workflows.payloadBucket);
    expect(bucket.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
    });
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.LifecycleConfiguration.Rules).toEqual([
      {
        Id: "abort-incomplete-uploads",
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
        Status: "Enabled",
      },
    ]);
    template.hasResource("AWS::S3::Bucket", { DeletionPolicy: "Retain" });
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Deny",
            Action: "s3:*",
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
        ]),
      },
    });
  });
});

describe("retention, the sweeper and the reaper", () => {
  it("runs the sweeper's live alias every 5 minutes, with the stale time of two step visibility timeouts", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(5 minutes)",
      Targets: [
        Match.objectLike({
          Arn: ref(workflows.aliases.sweeper.functionArn),
          RetryPolicy: { MaximumRetryAttempts: 2 },
        }),
      ],
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Handler: "index.sweeperHandler",
      // Two step visibility timeouts (2 x 6 x 5 minutes), plus the 5 s a running run's document may lag.
      Environment: { Variables: Match.objectLike({ TSWORKFLOW_SWEEP_STALE_SECONDS: "3605" }) },
    });
  });

  it("feeds the reaper only the TTL deletions of run documents from the table's stream", () => {
    expect(resourceOf("AWS::DynamoDB::Table", workflows.table).StreamSpecification).toEqual({
      StreamViewType: "OLD_IMAGE",
    });
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: ref(workflows.table.tableStreamArn),
      FunctionName: ref(workflows.aliases.reaper.functionName),
      StartingPosition: "TRIM_HORIZON",
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      FilterCriteria: {
        Filters: [
          {
            Pattern: JSON.stringify({
              eventName: ["REMOVE"],
              userIdentity: { type: ["Service"], principalId: ["dynamodb.amazonaws.com"] },
              dynamodb: { Keys: { sk: { S: ["RUN"] } } },
            }),
          },
        ],
      },
    });
  });

  it("lets the sweeper read runs, repair documents and activate runs, and the reaper delete them", () => {
    const sweeper = statements(workflows.sweeperFunction);
    expect(actionsOf(sweeper)).toEqual([
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "s3:GetObject",
      "sqs:SendMessage",
    ]);
    expect(resourcesFor(sweeper, "sqs:SendMessage")).toEqual([ref(workflows.workflowQueue.queueArn)]);
    const reaper = actionsOf(statements(workflows.reaperFunction));
    for (const action of [
      "dynamodb:BatchWriteItem",
      "dynamodb:DeleteItem",
      "dynamodb:Query",
      "s3:DeleteObject",
      "s3:ListBucket",
    ])
      expect(reaper).toContain(action);
    expect(reaper.filter((action) => action.startsWith("sqs:") || action.startsWith("scheduler:"))).toEqual(
      [],
    );
  });
});

describe("the functions", () => {
  const functions = () =>
    [
      ["workflowHandler", workflows.workflowFunction],
      ["stepHandler", workflows.stepFunction],
      ["startHandler", workflows.startFunction],
    ] as const;

  it("runs each handler of the entry on Node.js 24, arm64", () => {
    for (const [handler] of functions()) {
      template.hasResourceProperties("AWS::Lambda::Function", {
        Handler: `index.${handler}`,
        Runtime: "nodejs24.x",
        Architectures: ["arm64"],
        MemorySize: 512,
      });
    }
    // workflow, step, start, sweeper, reaper, the two callers
    template.resourceCountIs("AWS::Lambda::Function", 7);
  });

  it("publishes a version of each function per deploy behind a live alias, consumers before producers", () => {
    for (const [name, fn] of [
      ["workflow", workflows.workflowFunction],
      ["step", workflows.stepFunction],
      ["start", workflows.startFunction],
      ["sweeper", workflows.sweeperFunction],
      ["reaper", workflows.reaperFunction],
    ] as const) {
      const alias = workflows.aliases[name];
      expect(resourceOf("AWS::Lambda::Alias", alias)).toEqual({
        FunctionName: ref(fn.functionName),
        FunctionVersion: ref(fn.currentVersion.version),
        Name: "live",
      });
    }
    const dependsOn = (construct: IConstruct) =>
      template.findResources("AWS::Lambda::Alias")[
        stack.getLogicalId(construct.node.defaultChild as CfnElement)
      ]?.DependsOn as string[];
    const idOf = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
    expect(dependsOn(workflows.aliases.workflow)).toContain(idOf(workflows.aliases.step));
    expect(dependsOn(workflows.aliases.start)).toContain(idOf(workflows.aliases.workflow));
  });

  it("sets exactly the variables loadConfig reads, and the values the resources have", () => {
    // Prepare: the variables the runtime reads, except AWS_REGION (Lambda sets it).
    const sample = configToEnvironment({
      tableName: "runs",
      workflowQueueUrl: "https://sqs/q.fifo",
      stepQueueUrl: "https://sqs/s",
      stepQueueArn: "arn:aws:sqs:us-east-1:000000000000:s",
      scheduleGroup: "g",
      schedulerRoleArn: "arn:aws:iam::000000000000:role/r",
      region: "us-east-1",
      endpoints: {},
      ttlDays: 30,
      payloadBucket: "payloads",
      timerDeadLetterQueueArn: "arn:aws:sqs:us-east-1:000000000000:t",
      sweepStaleAfterSeconds: 3600,
    });
    const expected = Object.keys(sample).filter((name) => name !== "AWS_REGION");
    // Act
    const variables = Object.values(template.findResources("AWS::Lambda::Function"))
      .filter((fn) => fn.Properties.Handler !== "index.handler")
      .map((fn) => fn.Properties.Environment.Variables as Record<string, unknown>);
    // Assess
    expect(variables).toHaveLength(5);
    for (const environment of variables) {
      expect(Object.keys(environment).sort()).toEqual([...expected, "NODE_OPTIONS"].sort());
      expect(environment).toMatchObject({
        TSWORKFLOW_TABLE_NAME: ref(workflows.table.tableName),
        TSWORKFLOW_WORKFLOW_QUEUE_URL: ref(workflows.workflowQueue.queueUrl),
        TSWORKFLOW_STEP_QUEUE_URL: ref(workflows.stepQueue.queueUrl),
        TSWORKFLOW_STEP_QUEUE_ARN: ref(workflows.stepQueue.queueArn),
        TSWORKFLOW_SCHEDULER_ROLE_ARN: ref(workflows.schedulerRole.roleArn),
        TSWORKFLOW_PAYLOAD_BUCKET: ref(workflows.payloadBucket.bucketName),
        TSWORKFLOW_TIMER_DLQ_ARN: ref(workflows.timerDeadLetterQueue.queueArn),
        TSWORKFLOW_TTL_DAYS: "30",
        NODE_OPTIONS: "--enable-source-maps",
      });
    }
    expect(() => loadConfig(sample)).not.toThrow();
  });

  it("writes each function's logs to its own group, kept a month", () => {
    template.resourceCountIs("AWS::Logs::LogGroup", 5);
    template.allResourcesProperties("AWS::Logs::LogGroup", { RetentionInDays: 30 });
    for (const [, fn] of functions()) {
      const logGroup = resourceOf("AWS::Lambda::Function", fn).LoggingConfig.LogGroup;
      expect(logGroup).toEqual({ Ref: expect.stringContaining(`${fn.node.id.replace("Function", "")}Logs`) });
    }
  });

  it("feeds the workflow function's alias from the FIFO queue and the step function's from the step queue, reporting item failures", () => {
    template.resourceCountIs("AWS::Lambda::EventSourceMapping", 3); // and the reaper's stream
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: ref(workflows.workflowQueue.queueArn),
      FunctionName: ref(workflows.aliases.workflow.functionName),
      BatchSize: 10,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: ref(workflows.stepQueue.queueArn),
      FunctionName: ref(workflows.aliases.step.functionName),
      BatchSize: 10,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
  });
});

describe("least privilege", () => {
  const tableArn = () => ref(workflows.table.tableArn);

  it("uses no managed policy on the kit's roles", () => {
    for (const grantee of [workflows.workflowFunction, workflows.stepFunction, workflows.startFunction]) {
      const role = resourceOf("AWS::IAM::Role", grantee.role as iam.Role);
      expect(role.AssumeRolePolicyDocument.Statement[0].Principal.Service).toBe("lambda.amazonaws.com");
      expect(role.ManagedPolicyArns).toBeUndefined();
    }
    expect(resourceOf("AWS::IAM::Role", workflows.schedulerRole).ManagedPolicyArns).toBeUndefined();
  });

  // The step function goes on with a run after a step the run waits on alone, and activates runs whose timer
  // is due: it does what the workflow function does.
  it.each([
    ["workflow", () => workflows.workflowFunction],
    ["step", () => workflows.stepFunction],
  ])("lets the %s function replay, commit, send and schedule, and nothing else", (_, fn) => {
    // Act
    const allowed = statements(fn());
    // Assess
    expect(actionsOf(allowed)).toEqual(
      [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "iam:PassRole",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:PutObject",
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
      ].sort(),
    );
    expect(resourcesFor(allowed, "dynamodb:PutItem")).toEqual([tableArn()]);
    expect(resourcesFor(allowed, "sqs:ReceiveMessage")).toEqual([
      ref((fn() === workflows.stepFunction ? workflows.stepQueue : workflows.workflowQueue).queueArn),
    ]);
    expect(resourcesFor(allowed, "sqs:SendMessage")).toEqual([
      ref(workflows.workflowQueue.queueArn),
      ref(workflows.stepQueue.queueArn),
    ]);
  });

  it.each([
    ["workflow", () => workflows.workflowFunction],
    ["step", () => workflows.stepFunction],
  ])(
    "limits the %s function's schedule actions to the kit's group and PassRole to the scheduler role, for Scheduler only",
    (_, fn) => {
      // Act
      const allowed = statements(fn());
      const group = workflows.scheduleGroup.scheduleGroupName;
      // Assess
      expect(resourcesFor(allowed, "scheduler:CreateSchedule")).toEqual([
        {
          "Fn::Join": [
            "",
            [
              "arn:",
              { Ref: "AWS::Partition" },
              ":scheduler:",
              { Ref: "AWS::Region" },
              ":",
              { Ref: "AWS::AccountId" },
              `:schedule/${group}/*`,
            ],
          ],
        },
      ]);
      const passRole = allowed.find((statement) => statement.Action === "iam:PassRole");
      expect(passRole?.Resource).toEqual(ref(workflows.schedulerRole.roleArn));
      expect(passRole?.Condition).toEqual({
        StringEquals: { "iam:PassedToService": "scheduler.amazonaws.com" },
      });
    },
  );

  it("lets the start function create runs and enqueue their first activation only", () => {
    const allowed = statements(workflows.startFunction);
    expect(actionsOf(allowed)).toEqual(
      [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:PutObject",
        "sqs:SendMessage",
      ].sort(),
    );
    expect(resourcesFor(allowed, "sqs:SendMessage")).toEqual([ref(workflows.workflowQueue.queueArn)]);
    expect(resourcesFor(allowed, "s3:PutObject")).toEqual([
      { "Fn::Join": ["", [ref(workflows.payloadBucket.bucketArn), "/runs/*"]] },
    ]);
  });

  it("allows no action on every resource and no wildcard action", () => {
    for (const grantee of [
      workflows.workflowFunction,
      workflows.stepFunction,
      workflows.startFunction,
      workflows.sweeperFunction,
      workflows.schedulerRole,
    ]) {
      for (const statement of statements(grantee)) {
        const actions = Array.isArray(statement.Action) ? statement.Action : [statement.Action];
        expect(actions.filter((action) => action.includes("*"))).toEqual([]);
        expect(statement.Resource).not.toBe("*");
      }
    }
  });
});

describe("grantStart", () => {
  it("lets the grantee invoke the start function and do what createClient().start/getRun does", () => {
    // Act
    const allowed = statements(caller);
    // Assess
    expect(actionsOf(allowed)).toEqual(
      [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "lambda:InvokeFunction",
        "s3:GetObject",
        "s3:PutObject",
        "sqs:SendMessage",
      ].sort(),
    );
    expect(resourcesFor(allowed, "dynamodb:PutItem")).toEqual([ref(workflows.table.tableArn)]);
    expect(resourcesFor(allowed, "sqs:SendMessage")).toEqual([ref(workflows.workflowQueue.queueArn)]);
    expect(resourcesFor(allowed, "lambda:InvokeFunction")).toEqual([
      ref(workflows.aliases.start.functionArn),
    ]);
  });

  it("grantRunControl adds what retryRun and listRuns need: UpdateItem, BatchGetItem and the indexes", () => {
    // Act
    const allowed = statements(operator);
    // Assess
    expect([...new Set(actionsOf(allowed))].sort()).toEqual(
      [...new Set([...actionsOf(statements(caller)), "dynamodb:UpdateItem", "dynamodb:BatchGetItem"])].sort(),
    );
    expect(resourcesFor(allowed, "dynamodb:UpdateItem")).toEqual([ref(workflows.table.tableArn)]);
  });

  it("grantRead lets the grantee list and read runs, and nothing else", () => {
    // Prepare
    const target = new Stack(testApp(), "Read");
    const kit = new DurableWorkflows(target, "Workflows", { entry: EXAMPLES_ENTRY });
    const reader = new iam.Role(target, "Reader", { assumedBy: new iam.AccountRootPrincipal() });
    // Act
    kit.grantRead(reader);
    const allowed = statementsOf(Template.fromStack(target), target, reader);
    // Assess
    expect(actionsOf(allowed)).toEqual([
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:Query",
      "s3:GetObject",
    ]);
    expect(resourcesFor(allowed, "dynamodb:Query")).toEqual([
      target.resolve(kit.table.tableArn),
      { "Fn::Join": ["", [target.resolve(kit.table.tableArn), "/index/*"]] },
    ]);
  });

  it("gives the environment createClient reads", () => {
    // Act
    const environment = workflows.clientEnvironment();
    // Assess
    expect(Object.keys(environment).sort()).toEqual(
      [
        "TSWORKFLOW_PAYLOAD_BUCKET",
        "TSWORKFLOW_SCHEDULE_GROUP",
        "TSWORKFLOW_START_FUNCTION",
        "TSWORKFLOW_TABLE_NAME",
        "TSWORKFLOW_WORKFLOW_QUEUE_URL",
      ].sort(),
    );
    const config = loadClientConfig({
      TSWORKFLOW_TABLE_NAME: "runs",
      TSWORKFLOW_WORKFLOW_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/000000000000/q.fifo",
      AWS_REGION: "us-east-1",
    });
    expect(config.tableName).toBe("runs");
  });
});

describe("webhooks", () => {
  it("adds no webhook function unless asked", () => {
    expect(workflows.webhookFunction).toBeUndefined();
    expect(workflows.webhookUrl).toBeUndefined();
    template.resourceCountIs("AWS::Lambda::Url", 0);
  });

  it("serves them from a fourth function behind a public Function URL, with the secret by reference", () => {
    // Prepare
    const target = new Stack(testApp(), "Hooks");
    const secret = new secretsmanager.Secret(target, "HookSecret");
    const hooks = new DurableWorkflows(target, "Workflows", {
      entry: EXAMPLES_ENTRY,
      webhooks: true,
      webhookSecret: secret,
    });
    const webhookFunction = hooks.webhookFunction as lambda.Function;
    // Act
    const hooksTemplate = Template.fromStack(target);
    // Assess
    hooksTemplate.hasResourceProperties("AWS::Lambda::Url", {
      AuthType: "NONE",
      TargetFunctionArn: target.resolve(webhookFunction.functionArn),
    });
    const functions = Object.values(hooksTemplate.findResources("AWS::Lambda::Function"));
    const withSecret = functions.filter(
      (fn) => fn.Properties.Environment.Variables.TSWORKFLOW_WEBHOOK_SECRET,
    );
    expect(withSecret.map((fn) => fn.Properties.Handler)).toEqual(["index.webhookHandler"]);
    expect(
      JSON.stringify(withSecret[0]?.Properties.Environment.Variables.TSWORKFLOW_WEBHOOK_SECRET),
    ).toContain("{{resolve:secretsmanager:");
    const allowed = statementsOf(hooksTemplate, target, webhookFunction);
    expect(actionsOf(allowed)).toEqual(
      [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:PutObject",
        "sqs:SendMessage",
      ].sort(),
    );
    expect(resourcesFor(allowed, "sqs:SendMessage")).toEqual([target.resolve(hooks.workflowQueue.queueArn)]);
    expect(
      Object.keys(hooksTemplate.findOutputs("*")).some((id) => id.startsWith("WorkflowsWebhookUrl")),
    ).toBe(true);
  });
});

describe("alarms and outputs", () => {
  it("alarms on any message in a DLQ, old messages, function errors and throttles and table throttles, without actions by default", () => {
    // 3 DLQs, 2 queue ages, errors and throttles of 5 functions, the table's throttles
    template.resourceCountIs("AWS::CloudWatch::Alarm", 3 + 2 + 10 + 1);
    for (const fn of workflows.functions) {
      for (const metric of ["Errors", "Throttles"]) {
        template.hasResourceProperties("AWS::CloudWatch::Alarm", {
          Namespace: "AWS/Lambda",
          MetricName: metric,
          Dimensions: [{ Name: "FunctionName", Value: ref(fn.functionName) }],
          Statistic: "Sum",
          Period: 300,
          Threshold: 1,
          ComparisonOperator: "GreaterThanOrEqualToThreshold",
        });
      }
    }
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: "reads + writes" }),
        Match.objectLike({
          MetricStat: Match.objectLike({
            Metric: {
              Namespace: "AWS/DynamoDB",
              MetricName: "WriteThrottleEvents",
              Dimensions: [{ Name: "TableName", Value: ref(workflows.table.tableName) }],
            },
          }),
        }),
      ]),
      Threshold: 1,
    });
    template.resourceCountIs("AWS::CloudWatch::Dashboard", 0);
    for (const queue of [workflows.workflowDeadLetterQueue, workflows.stepDeadLetterQueue]) {
      template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ApproximateNumberOfMessagesVisible",
        Namespace: "AWS/SQS",
        Dimensions: [{ Name: "QueueName", Value: ref(queue.queueName) }],
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        Threshold: 1,
        AlarmActions: Match.absent(),
      });
    }
    for (const queue of [workflows.workflowQueue, workflows.stepQueue]) {
      template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ApproximateAgeOfOldestMessage",
        Dimensions: [{ Name: "QueueName", Value: ref(queue.queueName) }],
        Threshold: 1800,
        Statistic: "Maximum",
      });
    }
  });

  it("gives metric methods for the queues, the DLQs, the functions and the table", () => {
    // Act
    const age = ref(workflows.metricWorkflowQueueAge().toMetricConfig().metricStat?.dimensions);
    const dead = workflows.metricDeadLetterMessages().toMetricConfig().mathExpression;
    const errors = workflows.metricErrors({ period: Duration.minutes(1) });
    const throttles = workflows.metricTableThrottles().toMetricConfig().mathExpression;
    // Assess
    expect(age).toEqual([{ name: "QueueName", value: ref(workflows.workflowQueue.queueName) }]);
    expect(workflows.metricStepQueueAge().metricName).toBe("ApproximateAgeOfOldestMessage");
    expect(dead?.expression).toBe("workflow + step + timer");
    expect(errors.expression).toBe("f0 + f1 + f2 + f3 + f4");
    expect(errors.period.toMinutes()).toBe(1);
    expect(workflows.metricThrottles().expression).toBe("f0 + f1 + f2 + f3 + f4");
    expect(Object.keys(throttles?.usingMetrics ?? {}).sort()).toEqual(["reads", "writes"]);
  });

  it("outputs what a caller or an operator needs", () => {
    const outputs = Object.keys(template.findOutputs("*")).map((id) => id.replace(/[0-9A-F]{8}$/, ""));
    expect(outputs.sort()).toEqual(
      [
        "WorkflowsPayloadBucketName",
        "WorkflowsTimerDeadLetterQueueUrl",
        "WorkflowsScheduleGroupName",
        "WorkflowsSchedulerRoleArn",
        "WorkflowsStepQueueArn",
        "WorkflowsStartFunctionArn",
        "WorkflowsStartFunctionName",
        "WorkflowsStepDeadLetterQueueUrl",
        "WorkflowsStepQueueUrl",
        "WorkflowsTableName",
        "WorkflowsWorkflowDeadLetterQueueUrl",
        "WorkflowsWorkflowQueueUrl",
      ].sort(),
    );
  });
});

describe("properties", () => {
  const base: DurableWorkflowsProps = { entry: EXAMPLES_ENTRY };
  const build = (props: Partial<DurableWorkflowsProps>) => {
    const app = testApp();
    const target = new Stack(app, "Props");
    const construct = new DurableWorkflows(target, "Workflows", { ...base, ...props });
    return { target, construct };
  };

  it("applies the settings given", () => {
    // Prepare
    const { target } = build({
      memorySize: 1024,
      stepMemorySize: 2048,
      workflowTimeout: Duration.seconds(20),
      stepTimeout: Duration.minutes(10),
      startTimeout: Duration.seconds(5),
      logRetention: logs.RetentionDays.ONE_WEEK,
      removalPolicy: RemovalPolicy.DESTROY,
      tableName: "my-runs",
      scheduleGroupName: "my-timers",
      retention: Duration.days(7),
      sweepInterval: Duration.minutes(15),
      dashboard: true,
      maxReceiveCount: 3,
      workflowBatchSize: 5,
      stepBatchSize: 1,
      maxMessageAge: Duration.hours(1),
      handlerNames: { start: "begin" },
      environment: { EMAIL_API: "https://mail.example" },
      webhooks: true,
    });
    // Act
    const props = Template.fromStack(target);
    // Assess
    props.hasResourceProperties("AWS::Lambda::Function", {
      Handler: "index.workflowHandler",
      MemorySize: 1024,
      Timeout: 20,
    });
    // memorySize is every function's but the step function's (deploy.md's table says so).
    for (const handler of ["begin", "webhookHandler", "sweeperHandler", "reaperHandler"])
      props.hasResourceProperties("AWS::Lambda::Function", { Handler: `index.${handler}`, MemorySize: 1024 });
    props.hasResourceProperties("AWS::Lambda::Function", {
      Handler: "index.stepHandler",
      MemorySize: 2048,
      Timeout: 600,
    });
    props.hasResourceProperties("AWS::Lambda::Function", {
      Handler: "index.begin",
      Timeout: 5,
      Environment: {
        Variables: Match.objectLike({
          EMAIL_API: "https://mail.example",
          TSWORKFLOW_TTL_DAYS: "7",
          TSWORKFLOW_SCHEDULE_GROUP: "my-timers",
        }),
      },
    });
    props.hasResourceProperties("AWS::SQS::Queue", {
      FifoQueue: true,
      VisibilityTimeout: 120,
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 3 }),
    });
    props.hasResourceProperties("AWS::SQS::Queue", {
      VisibilityTimeout: 3600,
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 3 }),
    });
    props.hasResourceProperties("AWS::Lambda::EventSourceMapping", { BatchSize: 5 });
    props.hasResourceProperties("AWS::Lambda::EventSourceMapping", { BatchSize: 1 });
    props.hasResourceProperties("AWS::DynamoDB::Table", { TableName: "my-runs" });
    props.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Delete" });
    props.hasResource("AWS::Scheduler::ScheduleGroup", {
      DeletionPolicy: "Delete",
      Properties: { Name: "my-timers" },
    });
    props.allResourcesProperties("AWS::Logs::LogGroup", { RetentionInDays: 7 });
    props.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(15 minutes)" });
    props.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
    props.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ApproximateAgeOfOldestMessage",
      Threshold: 3600,
    });
  });

  it("has the 16 alarms (18 with webhooks) and 17 alarm metrics (19) that deploy.md prices", () => {
    // Prepare
    const hooks = build({ webhooks: true }).target;
    // Act
    const count = (stack: Stack) => {
      const alarms = Object.values(Template.fromStack(stack).findResources("AWS::CloudWatch::Alarm"));
      // CloudWatch bills an alarm per metric it reads: a metric math alarm counts each of its metrics.
      const metrics = alarms.reduce(
        (sum, alarm) =>
          sum +
          (alarm.Properties.Metrics
            ? (alarm.Properties.Metrics as { MetricStat?: unknown }[]).filter((query) => query.MetricStat)
                .length
            : 1),
        0,
      );
      return { alarms: alarms.length, metrics };
    };
    // Assess
    expect(count(stack)).toEqual({ alarms: 16, metrics: 17 });
    expect(count(hooks)).toEqual({ alarms: 18, metrics: 19 });
  });

  it("sends the alarms to the topic given, on alarm and back to OK", () => {
    // Prepare
    const app = testApp();
    const target = new Stack(app, "Alarms");
    const topic = new sns.Topic(target, "Topic");
    new DurableWorkflows(target, "Workflows", { ...base, alarmTopic: topic });
    // Act
    const alarms = Object.values(Template.fromStack(target).findResources("AWS::CloudWatch::Alarm"));
    // Assess
    expect(alarms).toHaveLength(16);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([target.resolve(topic.topicArn)]);
      expect(alarm.Properties.OKActions).toEqual([target.resolve(topic.topicArn)]);
    }
  });

  it("passes endpoint overrides to the functions", () => {
    const { target } = build({
      endpoints: { dynamodb: "http://localhost:4566", sqs: "http://localhost:4566" },
    });
    Template.fromStack(target).hasResourceProperties("AWS::Lambda::Function", {
      Environment: {
        Variables: Match.objectLike({
          TSWORKFLOW_DYNAMODB_ENDPOINT: "http://localhost:4566",
          TSWORKFLOW_SQS_ENDPOINT: "http://localhost:4566",
          TSWORKFLOW_SCHEDULER_ENDPOINT: Match.absent(),
        }),
      },
    });
  });

  it.each([
    [{ entry: "functions/missing.ts" }, /entry "functions\/missing.ts" is not a file/],
    [{ entry: "" }, /entry must be the path .*""/],
    [{ handlerNames: { step: "step-handler" } }, /handlerNames.step .*"step-handler"/],
    [{ memorySize: 64 }, /memorySize must be an integer from 128 to 10240; it is 64/],
    [{ memorySize: Number.NaN }, /memorySize must be an integer from 128 to 10240; it is NaN\./],
    [{ stepMemorySize: Number.POSITIVE_INFINITY }, /stepMemorySize .* it is Infinity\./],
    [{ stepMemorySize: 1000.5 }, /stepMemorySize .* it is 1000.5/],
    [{ workflowTimeout: Duration.minutes(16) }, /workflowTimeout .* it is 16 minutes/],
    [{ stepTimeout: Duration.millis(1500) }, /stepTimeout .* it is 1 second 500 millis/],
    [{ startTimeout: Duration.seconds(0) }, /startTimeout .* it is 0 seconds/],
    [{ workflowBatchSize: 11 }, /workflowBatchSize must be an integer from 1 to 10; it is 11/],
    [{ stepBatchSize: 0 }, /stepBatchSize .* it is 0/],
    [{ maxReceiveCount: 0 }, /maxReceiveCount .* it is 0/],
    [{ retention: Duration.hours(12) }, /retention must be whole days from 1 to 3650; it is 12 hours/],
    [{ retention: Duration.days(4000) }, /retention .* it is 4000 days/],
    [
      { sweepInterval: Duration.seconds(30) },
      /sweepInterval must be whole minutes from 1 to 60; it is 30 seconds/,
    ],
    [
      { maxMessageAge: Duration.minutes(10) },
      /maxMessageAge must be longer than 15 minutes.* it is 10 minutes/,
    ],
    [{ tableName: "a b" }, /tableName .* it is "a b"/],
    [{ scheduleGroupName: "timers/1" }, /scheduleGroupName .* it is "timers\/1"/],
    [{ environment: { TSWORKFLOW_TABLE_NAME: "x" } }, /environment must not set "TSWORKFLOW_TABLE_NAME"/],
    [{ environment: { AWS_REGION: "x" } }, /environment must not set "AWS_REGION"/],
    [{ environment: { "1X": "x" } }, /invalid variable name "1X"/],
    [
      { endpoints: { sqs: "localhost:4566" } },
      /endpoints.sqs must be an http\(s\) URL; it is "localhost:4566"/,
    ],
    [{ handlerNames: { webhook: "hooks.handler" } }, /handlerNames.webhook .*"hooks.handler"/],
    [{ metricsNamespace: "" }, /metricsNamespace must be a CloudWatch namespace .*; it is ""\./],
    [{ metricsNamespace: "  " }, /metricsNamespace .* it is " {2}"\./],
    [
      { metricsNamespace: "AWS/Lambda" },
      /metricsNamespace .*not starting with "AWS\/".* it is "AWS\/Lambda"/,
    ],
    [{ metricsNamespace: "orders,eu" }, /metricsNamespace .* it is "orders,eu"/],
    [
      { stepTimout: Duration.minutes(5) },
      /unknown option "stepTimout"\. The options are entry, handlerNames,/,
    ],
    [
      { handlerNames: { workflw: "wf" } },
      /unknown option "handlerNames\.workflw"\. The options are handlerNames\.workflow,/,
    ],
    [{ endpoints: { dynamo: "http://127.0.0.1:8000" } }, /unknown option "endpoints\.dynamo"/],
  ] as [Partial<DurableWorkflowsProps>, RegExp][])("rejects %o naming the bad value", (props, message) => {
    expect(() => build(props)).toThrow(message);
  });

  it("refuses a webhook secret without the webhook function", () => {
    const target = new Stack(testApp(), "Secret");
    const secret = new secretsmanager.Secret(target, "HookSecret");
    expect(() => new DurableWorkflows(target, "Workflows", { ...base, webhookSecret: secret })).toThrow(
      /webhookSecret is set but webhooks is not/,
    );
  });

  it("throws a ConfigurationError that names the construct", () => {
    expect(() => build({ memorySize: 1 })).toThrow(
      expect.objectContaining({
        name: "ConfigurationError",
        message: expect.stringContaining("Props/Workflows"),
      }),
    );
  });
});

describe("schedules", () => {
  const recurring = (target: Stack, kit: DurableWorkflows) =>
    target.resolve(
      target.formatArn({
        service: "scheduler",
        resource: "schedule",
        resourceName: `${kit.scheduleGroup.scheduleGroupName}/schedule.*`,
      }),
    );

  it("grants no function any recurring-schedule permission unless the schedules prop is on", () => {
    // Act
    const sweeper = actionsOf(statements(workflows.sweeperFunction));
    const step = actionsOf(statements(workflows.stepFunction));
    // Assess
    expect(sweeper.filter((action) => action.startsWith("scheduler:") || action === "iam:PassRole")).toEqual(
      [],
    );
    expect(step).not.toContain("scheduler:UpdateSchedule");
  });

  it("with schedules, lets the sweeper manage schedule.* in the kit's group only, passing only the scheduler role, and the step function start runs", () => {
    // Prepare
    const target = new Stack(testApp(), "Schedules");
    const kit = new DurableWorkflows(target, "Workflows", { entry: EXAMPLES_ENTRY, schedules: true });
    const template = Template.fromStack(target);
    const sweeper = statementsOf(template, target, kit.sweeperFunction);
    const step = statementsOf(template, target, kit.stepFunction);
    // Assess
    for (const action of ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"])
      expect(resourcesFor(sweeper, action)).toEqual([recurring(target, kit)]);
    expect(resourcesFor(sweeper, "iam:PassRole")).toEqual([target.resolve(kit.schedulerRole.roleArn)]);
    expect(sweeper.find((statement) => statement.Action === "iam:PassRole")?.Condition).toEqual({
      StringEquals: { "iam:PassedToService": "scheduler.amazonaws.com" },
    });
    for (const action of ["dynamodb:PutItem", "dynamodb:DeleteItem"])
      expect(resourcesFor(sweeper, action)).toContainEqual(target.resolve(kit.table.tableArn));
    for (const action of [
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
      "dynamodb:DeleteItem",
    ]) {
      const resources = resourcesFor(step, action);
      expect(resources.length).toBeGreaterThan(0);
      for (const resource of resources) expect(resource).toEqual(target.resolve(kit.table.tableArn));
    }
    // Its own schedule actions are the timers' (the kit's group), never the recurring schedules' updates.
    expect(actionsOf(step)).not.toContain("scheduler:UpdateSchedule");
  });

  it("grantScheduleControl adds to grantStart the schedule actions on schedule.* and the scheduler role's PassRole", () => {
    // Prepare
    const target = new Stack(testApp(), "Control");
    const kit = new DurableWorkflows(target, "Workflows", { entry: EXAMPLES_ENTRY, schedules: true });
    const ops = new iam.Role(target, "Ops", { assumedBy: new iam.AccountRootPrincipal() });
    const starter = new iam.Role(target, "Starter", { assumedBy: new iam.AccountRootPrincipal() });
    // Act
    kit.grantScheduleControl(ops);
    kit.grantStart(starter);
    const template = Template.fromStack(target);
    const allowed = statementsOf(template, target, ops);
    // Assess
    expect([...new Set(actionsOf(allowed))].sort()).toEqual(
      [
        ...new Set([
          ...actionsOf(statementsOf(template, target, starter)),
          "dynamodb:UpdateItem",
          "iam:PassRole",
          "scheduler:DeleteSchedule",
          "scheduler:GetSchedule",
          "scheduler:UpdateSchedule",
        ]),
      ].sort(),
    );
    for (const action of ["scheduler:GetSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"])
      expect(resourcesFor(allowed, action)).toEqual([recurring(target, kit)]);
    expect(resourcesFor(allowed, "iam:PassRole")).toEqual([target.resolve(kit.schedulerRole.roleArn)]);
  });
});
