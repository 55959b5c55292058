import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import {
  CfnOutput,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cloudwatchActions,
  Duration,
  aws_dynamodb as dynamodb,
  aws_lambda_event_sources as eventSources,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  Names,
  aws_lambda_nodejs as nodejs,
  RemovalPolicy,
  Stack,
  aws_scheduler as scheduler,
  type aws_secretsmanager as secretsmanager,
  type aws_sns as sns,
  aws_sqs as sqs,
  Token,
  Validations,
} from "aws-cdk-lib";
import { Construct } from "constructs";
import { TABLE_SCHEMA } from "../lib/adapters/aws/table-schema.ts";
import { ConfigurationError } from "../lib/core/errors.ts";

/** The export names the construct looks for in `entry`, unless overridden. */
export const DEFAULT_HANDLER_NAMES = {
  workflow: "workflowHandler",
  step: "stepHandler",
  start: "startHandler",
  webhook: "webhookHandler",
} as const;

/** Export names of the three handlers in the entry file. */
export interface HandlerNames {
  /** @default "workflowHandler" */
  readonly workflow?: string;
  /** @default "stepHandler" */
  readonly step?: string;
  /** @default "startHandler" */
  readonly start?: string;
  /** @default "webhookHandler" (used when `webhooks` is on) */
  readonly webhook?: string;
}

/**
 * Endpoint overrides passed to the functions as `TSWORKFLOW_*_ENDPOINT`, for emulators. Leave unset in
 * AWS (and in LocalStack, which gives its Lambdas `AWS_ENDPOINT_URL`, honoured by the SDK).
 */
export interface EndpointOverrides {
  /** @default the SDK's endpoint resolution */
  readonly dynamodb?: string;
  /** @default the SDK's endpoint resolution */
  readonly sqs?: string;
  /** @default the SDK's endpoint resolution */
  readonly scheduler?: string;
}

/** Properties of {@link DurableWorkflows}. */
export interface DurableWorkflowsProps {
  /**
   * Path of the TypeScript (or JavaScript) file that exports the three Lambda handlers, usually built
   * with `createHandlers({ workflows: [...] })` from `tsworkflow/aws`. It is bundled with the local
   * esbuild (never Docker); the AWS SDK v3 is left to the Lambda runtime.
   */
  readonly entry: string;
  /**
   * Export names of the handlers in `entry`.
   * @default { workflow: "workflowHandler", step: "stepHandler", start: "startHandler", webhook: "webhookHandler" }
   */
  readonly handlerNames?: HandlerNames;
  /**
   * Memory of the workflow and start functions, in MiB (128 to 10240). Replay is light: the default
   * is enough for logs of thousands of events.
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Memory of the step function, in MiB (128 to 10240): steps run your code.
   * @default the value of `memorySize`
   */
  readonly stepMemorySize?: number;
  /**
   * Timeout of the workflow function (one batch of up to 10 activations). The workflow queue's
   * visibility timeout is six times this, as AWS advises for SQS event sources.
   * @default Duration.seconds(30)
   */
  readonly workflowTimeout?: Duration;
  /**
   * Timeout of the step function (one batch of step attempts, run in parallel): the longest a step
   * may run. The step queue's visibility timeout is six times this.
   * @default Duration.minutes(5)
   */
  readonly stepTimeout?: Duration;
  /**
   * Timeout of the start function (one run creation).
   * @default Duration.seconds(10)
   */
  readonly startTimeout?: Duration;
  /**
   * How long the functions' CloudWatch logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the resources that hold data (the table, the queues and their DLQs, the schedule
   * group with its pending timers, the log groups) when they leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * The topic the alarms notify (on alarm and back to OK).
   * @default no actions: the alarms are visible in CloudWatch only
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Name of the DynamoDB table.
   * @default a name CloudFormation generates
   */
  readonly tableName?: string;
  /**
   * Name of the EventBridge Scheduler group of the kit's one-time schedules (long timers).
   * @default a name derived from the construct path (unique in the account and region)
   */
  readonly scheduleGroupName?: string;
  /**
   * Days a finished run stays in the table before DynamoDB's TTL deletes it (`TSWORKFLOW_TTL_DAYS`).
   * @default 30
   */
  readonly ttlDays?: number;
  /**
   * Receives of one message before SQS moves it to the queue's DLQ (1 to 1000).
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * Records per workflow function invocation (1 to 10, FIFO event sources take at most 10).
   * @default 10
   */
  readonly workflowBatchSize?: number;
  /**
   * Records per step function invocation (1 to 10). Steps of one batch run in parallel and share its
   * timeout.
   * @default 10
   */
  readonly stepBatchSize?: number;
  /**
   * The age of the oldest message in either queue that raises its alarm. Longer than SQS's largest
   * delay (15 minutes), so that a short timer waiting on the step queue never raises it.
   * @default Duration.minutes(30)
   */
  readonly maxMessageAge?: Duration;
  /**
   * Extra environment variables for the three functions (your steps' settings). Names starting with
   * `TSWORKFLOW_` or `AWS_` are reserved.
   * @default none
   */
  readonly environment?: Record<string, string>;
  /**
   * Endpoint overrides for emulators.
   * @default none: the SDK's endpoint resolution
   */
  readonly endpoints?: EndpointOverrides;
  /**
   * Serve `POST /hooks/<token>` (the calls that resume runs waiting on `createWebhook()`) from a fourth
   * function behind a Lambda Function URL. The URL takes no IAM authentication: each token is an
   * unguessable secret that works once (set `webhookSecret` to require signed calls as well). The entry
   * must export the handler (`createHandlers` gives `webhookHandler`).
   * @default false
   */
  readonly webhooks?: boolean;
  /**
   * The secret webhook calls must be signed with (HMAC, see `signWebhook`), passed to the webhook
   * function as `TSWORKFLOW_WEBHOOK_SECRET` through a CloudFormation dynamic reference (the template
   * holds no secret; the function's configuration does).
   * @default no signature required
   */
  readonly webhookSecret?: secretsmanager.ISecret;
}

/**
 * tsworkflow on AWS: a DynamoDB table (the event store), a FIFO workflow queue and a standard step
 * queue (each with a DLQ), an EventBridge Scheduler group and the role it uses to send long timers to
 * the step queue, the workflow, step and start Lambda functions, and alarms on the DLQs and on the
 * age of the oldest message. Each function gets only the IAM actions it uses, on its own resources.
 *
 * @example
 * import { DurableWorkflows } from "tsworkflow/cdk";
 * const workflows = new DurableWorkflows(this, "Workflows", { entry: "src/workflows-lambda.ts" });
 * workflows.grantStart(myApiFunction); // lambda:InvokeFunction on the start function, or createClient()
 * @throws ConfigurationError when a property is out of range (the message names the property and value)
 */
export class DurableWorkflows extends Construct {
  /** The event store (single-table layout of `TABLE_SCHEMA`). */
  readonly table: dynamodb.Table;
  /** The FIFO queue of activations (`MessageGroupId = runId`). */
  readonly workflowQueue: sqs.Queue;
  /** Where activations go after `maxReceiveCount` failed receives. */
  readonly workflowDeadLetterQueue: sqs.Queue;
  /** The standard queue of step tasks and short timers. */
  readonly stepQueue: sqs.Queue;
  /** Where step tasks and timers go after `maxReceiveCount` failed receives. */
  readonly stepDeadLetterQueue: sqs.Queue;
  /** The group of the one-time schedules of long timers. */
  readonly scheduleGroup: scheduler.ScheduleGroup;
  /** The role EventBridge Scheduler assumes to send a due timer to the step queue. */
  readonly schedulerRole: iam.Role;
  /** Runs activations from the workflow queue. */
  readonly workflowFunction: nodejs.NodejsFunction;
  /** Runs step attempts (and forwards timers) from the step queue. */
  readonly stepFunction: nodejs.NodejsFunction;
  /** Starts runs for callers that invoke it (`{ workflow, args, idempotencyKey }` → `{ runId, created }`). */
  readonly startFunction: nodejs.NodejsFunction;
  /** Serves `POST /hooks/<token>` behind {@link webhookUrl}, when `webhooks` is on. */
  readonly webhookFunction: nodejs.NodejsFunction | undefined;
  /** The webhook function's URL (calls go to `<url>hooks/<token>`), when `webhooks` is on. */
  readonly webhookUrl: lambda.FunctionUrl | undefined;
  /** The alarms: one per DLQ (any message) and one per queue (age of the oldest message). */
  readonly alarms: readonly cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: DurableWorkflowsProps) {
    super(scope, id);
    const settings = resolveProps(this, props);
    const stack = Stack.of(this);

    this.table = new dynamodb.Table(this, "Table", {
      ...(props.tableName === undefined ? {} : { tableName: props.tableName }),
      partitionKey: { name: TABLE_SCHEMA.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SCHEMA.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE_SCHEMA.ttlAttribute,
      removalPolicy: settings.removalPolicy,
    });
    for (const index of [TABLE_SCHEMA.byStatusIndex, TABLE_SCHEMA.byWorkflowIndex]) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.KEYS_ONLY,
      });
    }

    const queueDefaults = {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: settings.removalPolicy,
    };
    this.workflowDeadLetterQueue = new sqs.Queue(this, "WorkflowDeadLetterQueue", {
      ...queueDefaults,
      fifo: true,
    });
    this.workflowQueue = new sqs.Queue(this, "WorkflowQueue", {
      ...queueDefaults,
      fifo: true,
      // Deduplication ids are derived from each activation's cause (sqs-queue.ts), never the body.
      contentBasedDeduplication: false,
      // High-throughput FIFO: ordering and deduplication per run, throughput across runs.
      deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      visibilityTimeout: settings.workflowVisibilityTimeout,
      deadLetterQueue: { queue: this.workflowDeadLetterQueue, maxReceiveCount: settings.maxReceiveCount },
    });
    this.stepDeadLetterQueue = new sqs.Queue(this, "StepDeadLetterQueue", queueDefaults);
    this.stepQueue = new sqs.Queue(this, "StepQueue", {
      ...queueDefaults,
      visibilityTimeout: settings.stepVisibilityTimeout,
      deadLetterQueue: { queue: this.stepDeadLetterQueue, maxReceiveCount: settings.maxReceiveCount },
    });

    this.scheduleGroup = new scheduler.ScheduleGroup(this, "ScheduleGroup", {
      scheduleGroupName: settings.scheduleGroupName,
      removalPolicy: settings.removalPolicy,
    });
    this.schedulerRole = new iam.Role(this, "SchedulerRole", {
      description: "Assumed by EventBridge Scheduler to send tsworkflow's due timers to the step queue",
      // Only schedules of this account's group may use the role (confused-deputy guard).
      assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com", {
        conditions: {
          StringEquals: { "aws:SourceAccount": stack.account },
          ArnEquals: { "aws:SourceArn": this.scheduleGroup.scheduleGroupArn },
        },
      }),
    });
    this.schedulerRole.addToPolicy(
      new iam.PolicyStatement({ actions: ["sqs:SendMessage"], resources: [this.stepQueue.queueArn] }),
    );

    const environment: Record<string, string> = {
      ...settings.environment,
      TSWORKFLOW_TABLE_NAME: this.table.tableName,
      TSWORKFLOW_WORKFLOW_QUEUE_URL: this.workflowQueue.queueUrl,
      TSWORKFLOW_STEP_QUEUE_URL: this.stepQueue.queueUrl,
      TSWORKFLOW_STEP_QUEUE_ARN: this.stepQueue.queueArn,
      TSWORKFLOW_SCHEDULE_GROUP: settings.scheduleGroupName,
      TSWORKFLOW_SCHEDULER_ROLE_ARN: this.schedulerRole.roleArn,
      TSWORKFLOW_TTL_DAYS: String(settings.ttlDays),
      ...(props.endpoints?.dynamodb ? { TSWORKFLOW_DYNAMODB_ENDPOINT: props.endpoints.dynamodb } : {}),
      ...(props.endpoints?.sqs ? { TSWORKFLOW_SQS_ENDPOINT: props.endpoints.sqs } : {}),
      ...(props.endpoints?.scheduler ? { TSWORKFLOW_SCHEDULER_ENDPOINT: props.endpoints.scheduler } : {}),
      // Stack traces in CloudWatch point at the TypeScript sources.
      NODE_OPTIONS: "--enable-source-maps",
    };
    const createFunction = (
      name: string,
      handler: string,
      options: {
        memorySize: number;
        timeout: Duration;
        description: string;
        environment?: Record<string, string>;
      },
    ) => {
      const logGroup = new logs.LogGroup(this, `${name}Logs`, {
        retention: settings.logRetention,
        removalPolicy: settings.removalPolicy,
      });
      // An explicit role instead of AWSLambdaBasicExecutionRole: logs go to this function's group only.
      const role = new iam.Role(this, `${name}Role`, {
        assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
        description: `Execution role of the tsworkflow ${name.toLowerCase()} function`,
      });
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
          resources: [logGroup.logGroupArn],
        }),
      );
      return new nodejs.NodejsFunction(this, `${name}Function`, {
        entry: settings.entry,
        handler,
        description: options.description,
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: options.memorySize,
        timeout: options.timeout,
        role,
        logGroup,
        environment: { ...environment, ...options.environment },
        bundling: BUNDLING,
      });
    };

    this.workflowFunction = createFunction("Workflow", settings.handlerNames.workflow, {
      memorySize: settings.memorySize,
      timeout: settings.workflowTimeout,
      description: "tsworkflow: runs activations from the FIFO workflow queue",
    });
    this.stepFunction = createFunction("Step", settings.handlerNames.step, {
      memorySize: settings.stepMemorySize,
      timeout: settings.stepTimeout,
      description: "tsworkflow: runs step attempts and forwards timers from the step queue",
    });
    this.startFunction = createFunction("Start", settings.handlerNames.start, {
      memorySize: settings.memorySize,
      timeout: settings.startTimeout,
      description: "tsworkflow: starts runs for callers that invoke it",
    });
    this.webhookFunction = props.webhooks
      ? createFunction("Webhook", settings.handlerNames.webhook, {
          memorySize: settings.memorySize,
          timeout: settings.startTimeout,
          description: "tsworkflow: resumes runs waiting on a webhook (POST /hooks/<token>)",
          ...(props.webhookSecret
            ? { environment: { TSWORKFLOW_WEBHOOK_SECRET: props.webhookSecret.secretValue.unsafeUnwrap() } }
            : {}),
        })
      : undefined;
    // Public on purpose: the caller is a third party; the one-time token (and the optional HMAC) guard it.
    this.webhookUrl = this.webhookFunction?.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });

    this.workflowFunction.addEventSource(
      new eventSources.SqsEventSource(this.workflowQueue, {
        batchSize: settings.workflowBatchSize,
        reportBatchItemFailures: true,
      }),
    );
    this.stepFunction.addEventSource(
      new eventSources.SqsEventSource(this.stepQueue, {
        batchSize: settings.stepBatchSize,
        reportBatchItemFailures: true,
      }),
    );

    const tableArn = this.table.tableArn;
    // Workflow function: replays runs (GetItem, Query), commits (PutItem, one transaction of PutItems
    // for a split commit), updates the run document (UpdateItem), starts child runs (PutItem, and
    // DeleteItem to free the idempotency key of an expired one); it sends activations, steps and short
    // timers, and creates and deletes the schedules of long timers.
    this.allow(
      this.workflowFunction,
      [
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
      ],
      [tableArn],
    );
    this.allow(
      this.workflowFunction,
      ["sqs:SendMessage"],
      [this.workflowQueue.queueArn, this.stepQueue.queueArn],
    );
    const schedules = stack.formatArn({
      service: "scheduler",
      resource: "schedule",
      resourceName: `${settings.scheduleGroupName}/*`,
    });
    this.allow(this.workflowFunction, ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"], [schedules]);
    this.workflowFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["iam:PassRole"],
        resources: [this.schedulerRole.roleArn],
        conditions: { StringEquals: { "iam:PassedToService": "scheduler.amazonaws.com" } },
      }),
    );
    // Step function: reads and stores one outcome per attempt, wakes the run, re-delays early timers.
    this.allow(this.stepFunction, ["dynamodb:GetItem", "dynamodb:PutItem"], [tableArn]);
    this.allow(
      this.stepFunction,
      ["sqs:SendMessage"],
      [this.workflowQueue.queueArn, this.stepQueue.queueArn],
    );
    // Start function: what the client needs (see grantStart).
    this.allow(this.startFunction, CLIENT_TABLE_ACTIONS, [tableArn]);
    this.allow(this.startFunction, ["sqs:SendMessage"], [this.workflowQueue.queueArn]);
    // Webhook function: finds the run of a token (GetItem, Query) and delivers the event (PutItem, SendMessage).
    if (this.webhookFunction) {
      this.allow(
        this.webhookFunction,
        ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"],
        [tableArn],
      );
      this.allow(this.webhookFunction, ["sqs:SendMessage"], [this.workflowQueue.queueArn]);
    }

    Validations.of(this.workflowFunction.role as iam.Role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${flattenForNag(stack.resolve(schedules))}]`,
      reason:
        "Timer schedules are created at run time with names derived from the run and timer ids; the wildcard is limited to the kit's own schedule group.",
    });

    const alarms: cloudwatch.Alarm[] = [];
    const addAlarm = (name: string, alarm: cloudwatch.AlarmProps) => {
      const created = new cloudwatch.Alarm(this, name, alarm);
      if (props.alarmTopic) {
        created.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic));
        created.addOkAction(new cloudwatchActions.SnsAction(props.alarmTopic));
      }
      alarms.push(created);
    };
    for (const [name, queue, what] of [
      ["WorkflowDeadLetterQueueAlarm", this.workflowDeadLetterQueue, "an activation failed"],
      ["StepDeadLetterQueueAlarm", this.stepDeadLetterQueue, "a step task or timer failed"],
    ] as const) {
      addAlarm(name, {
        alarmDescription: `tsworkflow: ${what} ${settings.maxReceiveCount} times and is in ${queue.node.id}; its run is stuck until the message is redriven.`,
        metric: queue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(1),
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
    for (const [name, queue] of [
      ["WorkflowQueueAgeAlarm", this.workflowQueue],
      ["StepQueueAgeAlarm", this.stepQueue],
    ] as const) {
      addAlarm(name, {
        alarmDescription: `tsworkflow: the oldest message in ${queue.node.id} is older than ${settings.maxMessageAge.toHumanString()}; the functions are failing, throttled or too slow.`,
        metric: queue.metricApproximateAgeOfOldestMessage({
          period: Duration.minutes(1),
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: settings.maxMessageAge.toSeconds(),
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
    this.alarms = alarms;

    const outputs: [string, string, string][] = [
      ["TableName", this.table.tableName, "DynamoDB table of runs (TSWORKFLOW_TABLE_NAME)"],
      [
        "WorkflowQueueUrl",
        this.workflowQueue.queueUrl,
        "FIFO workflow queue (TSWORKFLOW_WORKFLOW_QUEUE_URL)",
      ],
      ["StepQueueUrl", this.stepQueue.queueUrl, "Standard step queue (TSWORKFLOW_STEP_QUEUE_URL)"],
      ["StepQueueArn", this.stepQueue.queueArn, "ARN of the step queue (TSWORKFLOW_STEP_QUEUE_ARN)"],
      ["WorkflowDeadLetterQueueUrl", this.workflowDeadLetterQueue.queueUrl, "DLQ of the workflow queue"],
      ["StepDeadLetterQueueUrl", this.stepDeadLetterQueue.queueUrl, "DLQ of the step queue"],
      [
        "ScheduleGroupName",
        settings.scheduleGroupName,
        "EventBridge Scheduler group of long timers (TSWORKFLOW_SCHEDULE_GROUP)",
      ],
      [
        "SchedulerRoleArn",
        this.schedulerRole.roleArn,
        "Role the Scheduler assumes (TSWORKFLOW_SCHEDULER_ROLE_ARN)",
      ],
      [
        "StartFunctionName",
        this.startFunction.functionName,
        "Invoke with { workflow, args, idempotencyKey }",
      ],
      ["StartFunctionArn", this.startFunction.functionArn, "ARN of the start function"],
      ...(this.webhookUrl
        ? [
            ["WebhookUrl", this.webhookUrl.url, "Webhook calls go to <url>hooks/<token>"] as [
              string,
              string,
              string,
            ],
          ]
        : []),
    ];
    for (const [name, value, description] of outputs) new CfnOutput(this, name, { value, description });
  }

  /**
   * Lets `grantee` start runs and read them, both ways: invoke the start function, or use
   * `createClient()` from `tsworkflow/aws` (set the variables of {@link clientEnvironment} on it).
   * Grants:
   * - `lambda:InvokeFunction` on the start function;
   * - `dynamodb:GetItem`, `dynamodb:PutItem`, `dynamodb:DeleteItem` (frees the idempotency key of an
   *   expired run) and `dynamodb:Query` (reads a large input kept in the log) on the table;
   * - `sqs:SendMessage` on the workflow queue (the run's first activation).
   * @example
   * workflows.grantStart(apiFunction);
   * for (const [name, value] of Object.entries(workflows.clientEnvironment())) apiFunction.addEnvironment(name, value);
   */
  grantStart(grantee: iam.IGrantable): iam.Grant {
    return this.startFunction
      .grantInvoke(grantee)
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: [...CLIENT_TABLE_ACTIONS],
          resourceArns: [this.table.tableArn],
        }),
      )
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: ["sqs:SendMessage"],
          resourceArns: [this.workflowQueue.queueArn],
        }),
      );
  }

  /**
   * Lets `grantee` do everything `createClient()` from `tsworkflow/aws` does: what {@link grantStart}
   * grants, plus `dynamodb:UpdateItem` on the table, which `retryRun` needs (it appends to the run's
   * log and updates its document). `getEvents`, `sendEvent` and `cancelRun` need nothing more than
   * `grantStart` gives.
   */
  grantRunControl(grantee: iam.IGrantable): iam.Grant {
    return this.grantStart(grantee).combine(
      iam.Grant.addToPrincipal({
        grantee,
        actions: ["dynamodb:UpdateItem"],
        resourceArns: [this.table.tableArn],
      }),
    );
  }

  /**
   * The environment of a function that starts runs: what `createClient()` reads
   * (`TSWORKFLOW_TABLE_NAME`, `TSWORKFLOW_WORKFLOW_QUEUE_URL`) and the start function's name
   * (`TSWORKFLOW_START_FUNCTION`) for callers that invoke it. Lambda sets `AWS_REGION`.
   */
  clientEnvironment(): Record<string, string> {
    return {
      TSWORKFLOW_TABLE_NAME: this.table.tableName,
      TSWORKFLOW_WORKFLOW_QUEUE_URL: this.workflowQueue.queueUrl,
      TSWORKFLOW_START_FUNCTION: this.startFunction.functionName,
    };
  }

  private allow(fn: lambda.IFunction, actions: readonly string[], resources: string[]): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: [...actions], resources }));
  }
}

/** What `createClient(config).start/getRun` and the start function do on the table. */
const CLIENT_TABLE_ACTIONS = [
  "dynamodb:GetItem",
  "dynamodb:PutItem",
  "dynamodb:DeleteItem",
  "dynamodb:Query",
] as const;

/**
 * The esbuild settings of the three functions. Exported so that tests bundle the entry exactly as the
 * construct does.
 */
export const BUNDLING: Readonly<nodejs.BundlingOptions> = {
  // Never Docker: the esbuild in node_modules bundles (the constructor checks that it is installed).
  forceDockerBundling: false,
  format: nodejs.OutputFormat.ESM,
  target: "node24",
  mainFields: ["module", "main"],
  // The Lambda runtime ships the AWS SDK v3: smaller bundles, faster cold starts.
  externalModules: ["@aws-sdk/*"],
  sourceMap: true,
  sourcesContent: false,
  minify: true,
  keepNames: true,
  // Bundled CommonJS dependencies may call require() on Node built-ins, which ESM lacks.
  banner:
    "import { createRequire as __tsworkflowCreateRequire } from 'node:module'; const require = __tsworkflowCreateRequire(import.meta.url);",
};

interface Settings {
  entry: string;
  handlerNames: Required<HandlerNames>;
  memorySize: number;
  stepMemorySize: number;
  workflowTimeout: Duration;
  stepTimeout: Duration;
  startTimeout: Duration;
  workflowVisibilityTimeout: Duration;
  stepVisibilityTimeout: Duration;
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
  scheduleGroupName: string;
  ttlDays: number;
  maxReceiveCount: number;
  workflowBatchSize: number;
  stepBatchSize: number;
  maxMessageAge: Duration;
  environment: Record<string, string>;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const GROUP_NAME = /^[0-9A-Za-z_.-]{1,64}$/;
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
const ENV_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/** AWS's advice for SQS event sources: a visibility timeout of six times the function timeout. */
const VISIBILITY_FACTOR = 6;
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;

/** Checks every property, naming the property and the bad value, and fills in the defaults. */
function resolveProps(scope: Construct, props: DurableWorkflowsProps): Settings {
  const fail = (message: string): never => {
    throw new ConfigurationError(`DurableWorkflows (${scope.node.path}): ${message}`);
  };
  const show = (value: unknown) => JSON.stringify(value) ?? String(value);

  if (typeof props.entry !== "string" || props.entry.trim() === "")
    fail(`entry must be the path of the file that exports the handlers; it is ${show(props.entry)}.`);
  if (!existsSync(props.entry) || !statSync(props.entry).isFile())
    fail(`entry ${show(props.entry)} is not a file (paths are relative to ${process.cwd()}).`);

  const handlerNames = { ...DEFAULT_HANDLER_NAMES, ...props.handlerNames };
  for (const [kind, name] of Object.entries(handlerNames)) {
    if (!IDENTIFIER.test(name))
      fail(`handlerNames.${kind} must be the name of an export of the entry; it is ${show(name)}.`);
  }

  const integer = (name: string, value: number | undefined, fallback: number, min: number, max: number) => {
    if (value === undefined) return fallback;
    if (Token.isUnresolved(value)) return value;
    if (!Number.isInteger(value) || value < min || value > max)
      fail(`${name} must be an integer from ${min} to ${max}; it is ${show(value)}.`);
    return value;
  };
  const memorySize = integer("memorySize", props.memorySize, 512, 128, 10240);
  const stepMemorySize = integer("stepMemorySize", props.stepMemorySize, memorySize, 128, 10240);
  const maxReceiveCount = integer("maxReceiveCount", props.maxReceiveCount, 5, 1, 1000);
  const workflowBatchSize = integer("workflowBatchSize", props.workflowBatchSize, 10, 1, 10);
  const stepBatchSize = integer("stepBatchSize", props.stepBatchSize, 10, 1, 10);

  const timeout = (name: string, value: Duration | undefined, fallback: Duration) => {
    const duration = value ?? fallback;
    const seconds = duration.toSeconds({ integral: false });
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 900)
      fail(
        `${name} must be a whole number of seconds from 1 s to 15 minutes; it is ${duration.toHumanString()}.`,
      );
    return duration;
  };
  const workflowTimeout = timeout("workflowTimeout", props.workflowTimeout, Duration.seconds(30));
  const stepTimeout = timeout("stepTimeout", props.stepTimeout, Duration.minutes(5));
  const startTimeout = timeout("startTimeout", props.startTimeout, Duration.seconds(10));
  const visibility = (value: Duration) =>
    Duration.seconds(Math.min(MAX_VISIBILITY_SECONDS, value.toSeconds() * VISIBILITY_FACTOR));

  const ttlDays = props.ttlDays ?? 30;
  if (!(typeof ttlDays === "number" && Number.isFinite(ttlDays) && ttlDays > 0 && ttlDays <= 3650))
    fail(`ttlDays must be a number of days above 0 and at most 3650; it is ${show(ttlDays)}.`);

  const maxMessageAge = props.maxMessageAge ?? Duration.minutes(30);
  if (maxMessageAge.toSeconds() <= 900)
    fail(
      `maxMessageAge must be longer than 15 minutes (SQS's largest delay, used by short timers); it is ${maxMessageAge.toHumanString()}.`,
    );

  if (
    props.tableName !== undefined &&
    !Token.isUnresolved(props.tableName) &&
    !TABLE_NAME.test(props.tableName)
  )
    fail(`tableName must be 3-255 of A-Z a-z 0-9 _ . -; it is ${show(props.tableName)}.`);
  const scheduleGroupName =
    props.scheduleGroupName ?? Names.uniqueResourceName(scope, { maxLength: 64, separator: "-" });
  if (Token.isUnresolved(scheduleGroupName))
    fail("scheduleGroupName must be a literal string (the IAM policy of the workflow function names it).");
  if (!GROUP_NAME.test(scheduleGroupName))
    fail(`scheduleGroupName must be 1-64 of 0-9 A-Z a-z _ . -; it is ${show(scheduleGroupName)}.`);

  const environment = props.environment ?? {};
  for (const name of Object.keys(environment)) {
    if (!ENV_NAME.test(name)) fail(`environment has an invalid variable name ${show(name)}.`);
    if (name.startsWith("TSWORKFLOW_") || name.startsWith("AWS_") || name === "NODE_OPTIONS")
      fail(
        `environment must not set ${show(name)}: the construct sets it (TSWORKFLOW_*, AWS_*, NODE_OPTIONS are reserved).`,
      );
  }
  if (props.webhookSecret !== undefined && !props.webhooks)
    fail("webhookSecret is set but webhooks is not: set webhooks: true to deploy the webhook function.");
  for (const [name, url] of Object.entries(props.endpoints ?? {})) {
    if (url !== undefined && !Token.isUnresolved(url) && !/^https?:\/\/[^\s/]+/.test(url))
      fail(`endpoints.${name} must be an http(s) URL; it is ${show(url)}.`);
  }

  assertLocalEsbuild(fail);

  return {
    entry: props.entry,
    handlerNames,
    memorySize,
    stepMemorySize,
    workflowTimeout,
    stepTimeout,
    startTimeout,
    workflowVisibilityTimeout: visibility(workflowTimeout),
    stepVisibilityTimeout: visibility(stepTimeout),
    logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    scheduleGroupName,
    ttlDays,
    maxReceiveCount,
    workflowBatchSize,
    stepBatchSize,
    maxMessageAge,
    environment,
  };
}

/**
 * NodejsFunction silently falls back to Docker when it cannot find esbuild; the kit bundles locally
 * only, so a missing esbuild is an error here.
 */
function assertLocalEsbuild(fail: (message: string) => never): void {
  const require = createRequire(import.meta.url);
  for (const from of [process.cwd(), import.meta.dirname]) {
    try {
      require.resolve("esbuild", { paths: [from] });
      return;
    } catch {
      // try the next place
    }
  }
  fail(
    "esbuild is not installed; the functions are bundled with the local esbuild, never Docker. Run: npm install --save-dev esbuild",
  );
}

/** The string cdk-nag reports for a resolved IAM resource (its `flattenCfnReference`). */
function flattenForNag(node: unknown): string {
  if (node === undefined) return "";
  if (typeof node === "string") return node.replace(/\$\{/g, "<").replace(/}/g, ">");
  if (typeof node === "object" && node !== null) {
    const value = node as Record<string, unknown>;
    if (Array.isArray(value["Fn::Join"])) {
      const [delimiter, items] = value["Fn::Join"] as [string, unknown[]];
      return items.map(flattenForNag).join(delimiter);
    }
    if ("Fn::Sub" in value) return flattenForNag(value["Fn::Sub"]);
    if (Array.isArray(value["Fn::GetAtt"])) {
      const [resource, attribute] = value["Fn::GetAtt"] as [unknown, unknown];
      return `<${flattenForNag(resource)}.${flattenForNag(attribute)}>`;
    }
    if ("Fn::ImportValue" in value) return flattenForNag(value["Fn::ImportValue"]);
    if ("Ref" in value) return `<${flattenForNag(value.Ref)}>`;
  }
  return JSON.stringify(node);
}
