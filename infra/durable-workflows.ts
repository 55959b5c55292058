import {
  CfnOutput,
  aws_cloudwatch as cloudwatch,
  Duration,
  type aws_dynamodb as dynamodb,
  aws_lambda_event_sources as eventSources,
  aws_events as events,
  aws_events_targets as eventTargets,
  aws_iam as iam,
  aws_lambda as lambda,
  type aws_lambda_nodejs as nodejs,
  type aws_s3 as s3,
  aws_scheduler as scheduler,
  type aws_sqs as sqs,
  Validations,
} from "aws-cdk-lib";
import { Construct } from "constructs";
import { createAlarms, createDashboard } from "./alarms.ts";
import { createFunction, type FunctionOptions, liveAlias } from "./functions.ts";
import {
  CLIENT_TABLE_ACTIONS,
  grantFunctions,
  grantScheduleFunctions,
  payloadObjects,
  READ_TABLE_ACTIONS,
  recurringSchedulesArn,
  tableAndIndexes,
} from "./permissions.ts";
import { type DurableWorkflowsProps, resolveProps } from "./props.ts";
import { createQueues, createSchedulerRole } from "./queues.ts";
import { DEFAULT_METRICS_NAMESPACE } from "./run-metrics.ts";
import { createPayloadBucket, createTable } from "./storage.ts";

export { BUNDLING } from "./bundling.ts";
export { LIVE_ALIAS } from "./functions.ts";
export type { DurableWorkflowsProps, EndpointOverrides, HandlerNames } from "./props.ts";
export { DEFAULT_HANDLER_NAMES } from "./props.ts";

/**
 * tsworkflow on AWS: a DynamoDB table (the event store) and an S3 bucket (payloads over 64 KB), a FIFO
 * workflow queue and a standard step queue (each with a DLQ), an EventBridge Scheduler group, its role
 * and the dead-letter queue of timers it could not deliver, the workflow, step and start functions, a
 * sweeper (every few minutes) and a reaper (expired runs), each published as a version behind a `live`
 * alias, and alarms. Each function gets only the IAM actions it uses, on its own resources.
 *
 * @example
 * import { DurableWorkflows } from "tsworkflow/cdk";
 * const workflows = new DurableWorkflows(this, "Workflows", { entry: "src/workflows-lambda.ts" });
 * workflows.grantStart(myApiFunction); // lambda:InvokeFunction on the start function, or createClient()
 * @throws ConfigurationError when a property is out of range (the message names the property and value)
 */
export class DurableWorkflows extends Construct {
  /** The event store (single-table layout of `TABLE_SCHEMA`), with a stream of TTL deletions for the reaper. */
  readonly table: dynamodb.Table;
  /** Payloads over 64 KB (`runs/<runId>/<sha256>.json`): encrypted, TLS only, private. */
  readonly payloadBucket: s3.Bucket;
  /** The FIFO queue of activations (`MessageGroupId = runId`). */
  readonly workflowQueue: sqs.Queue;
  /** Where activations go after `maxReceiveCount` failed receives. */
  readonly workflowDeadLetterQueue: sqs.Queue;
  /** The standard queue of step tasks and short timers. */
  readonly stepQueue: sqs.Queue;
  /** Where step tasks and timers go after `maxReceiveCount` failed receives. */
  readonly stepDeadLetterQueue: sqs.Queue;
  /** Where EventBridge Scheduler puts a timer it could not deliver for 24 hours. */
  readonly timerDeadLetterQueue: sqs.Queue;
  /** The group of the one-time schedules of long timers. */
  readonly scheduleGroup: scheduler.ScheduleGroup;
  /** The role EventBridge Scheduler assumes to send a due timer to the step queue (or its DLQ). */
  readonly schedulerRole: iam.Role;
  /** Runs activations from the workflow queue. */
  readonly workflowFunction: nodejs.NodejsFunction;
  /** Runs step attempts (and forwards timers) from the step queue. */
  readonly stepFunction: nodejs.NodejsFunction;
  /** Starts runs for callers that invoke it (`{ workflow, args, idempotencyKey }` → `{ runId, created }`). */
  readonly startFunction: nodejs.NodejsFunction;
  /** Serves `POST /hooks/<token>` behind {@link webhookUrl}, when `webhooks` is on. */
  readonly webhookFunction: nodejs.NodejsFunction | undefined;
  /** Re-sends what runs miss (lost timers and messages), every `sweepInterval`. */
  readonly sweeperFunction: nodejs.NodejsFunction;
  /** Deletes what is left of a run once its document expired (`retention` after it finished). */
  readonly reaperFunction: nodejs.NodejsFunction;
  /** The `live` alias of each function, which event sources, the schedule and callers use. */
  readonly aliases: {
    readonly workflow: lambda.Alias;
    readonly step: lambda.Alias;
    readonly start: lambda.Alias;
    readonly webhook: lambda.Alias | undefined;
    readonly sweeper: lambda.Alias;
    readonly reaper: lambda.Alias;
  };
  /** The webhook function's URL (calls go to `<url>hooks/<token>`), when `webhooks` is on. */
  readonly webhookUrl: lambda.FunctionUrl | undefined;
  /** The alarms (see docs/deploy.md: what each one means and what to do). */
  readonly alarms: readonly cloudwatch.Alarm[];
  /** The CloudWatch dashboard, with `dashboard: true`. */
  readonly dashboard: cloudwatch.Dashboard | undefined;

  constructor(scope: Construct, id: string, props: DurableWorkflowsProps) {
    super(scope, id);
    const settings = resolveProps(this, props);

    this.table = createTable(this, settings.removalPolicy, props.tableName);
    this.payloadBucket = createPayloadBucket(this, settings.removalPolicy);

    const queues = createQueues(this, settings);
    this.workflowQueue = queues.workflowQueue;
    this.workflowDeadLetterQueue = queues.workflowDeadLetterQueue;
    this.stepQueue = queues.stepQueue;
    this.stepDeadLetterQueue = queues.stepDeadLetterQueue;
    this.timerDeadLetterQueue = queues.timerDeadLetterQueue;

    this.scheduleGroup = new scheduler.ScheduleGroup(this, "ScheduleGroup", {
      scheduleGroupName: settings.scheduleGroupName,
      removalPolicy: settings.removalPolicy,
    });
    this.schedulerRole = createSchedulerRole(this, this.scheduleGroup, [
      this.stepQueue,
      this.timerDeadLetterQueue,
    ]);

    const environment: Record<string, string> = {
      ...settings.environment,
      TSWORKFLOW_TABLE_NAME: this.table.tableName,
      TSWORKFLOW_WORKFLOW_QUEUE_URL: this.workflowQueue.queueUrl,
      TSWORKFLOW_STEP_QUEUE_URL: this.stepQueue.queueUrl,
      TSWORKFLOW_STEP_QUEUE_ARN: this.stepQueue.queueArn,
      TSWORKFLOW_SCHEDULE_GROUP: settings.scheduleGroupName,
      TSWORKFLOW_SCHEDULER_ROLE_ARN: this.schedulerRole.roleArn,
      TSWORKFLOW_TIMER_DLQ_ARN: this.timerDeadLetterQueue.queueArn,
      TSWORKFLOW_PAYLOAD_BUCKET: this.payloadBucket.bucketName,
      TSWORKFLOW_TTL_DAYS: String(settings.ttlDays),
      // A pending or running run silent for two step visibility timeouts has lost a message.
      TSWORKFLOW_SWEEP_STALE_SECONDS: String(settings.stepVisibilityTimeout.toSeconds() * 2),
      ...(props.endpoints?.dynamodb ? { TSWORKFLOW_DYNAMODB_ENDPOINT: props.endpoints.dynamodb } : {}),
      ...(props.endpoints?.sqs ? { TSWORKFLOW_SQS_ENDPOINT: props.endpoints.sqs } : {}),
      ...(props.endpoints?.scheduler ? { TSWORKFLOW_SCHEDULER_ENDPOINT: props.endpoints.scheduler } : {}),
      ...(props.endpoints?.s3 ? { TSWORKFLOW_S3_ENDPOINT: props.endpoints.s3 } : {}),
      // Stack traces in CloudWatch point at the TypeScript sources.
      NODE_OPTIONS: "--enable-source-maps",
    };
    const create = (name: string, handler: string, options: FunctionOptions) =>
      createFunction(this, name, handler, settings, {
        ...options,
        environment: { ...environment, ...options.environment },
      });

    this.workflowFunction = create("Workflow", settings.handlerNames.workflow, {
      memorySize: settings.memorySize,
      timeout: settings.workflowTimeout,
      description: "tsworkflow: runs activations from the FIFO workflow queue",
    });
    this.stepFunction = create("Step", settings.handlerNames.step, {
      memorySize: settings.stepMemorySize,
      timeout: settings.stepTimeout,
      description: "tsworkflow: runs step attempts and forwards timers from the step queue",
    });
    this.startFunction = create("Start", settings.handlerNames.start, {
      memorySize: settings.memorySize,
      timeout: settings.startTimeout,
      description: "tsworkflow: starts runs for callers that invoke it",
    });
    this.webhookFunction = props.webhooks
      ? create("Webhook", settings.handlerNames.webhook, {
          memorySize: settings.memorySize,
          timeout: settings.startTimeout,
          description: "tsworkflow: resumes runs waiting on a webhook (POST /hooks/<token>)",
          ...(props.webhookSecret
            ? { environment: { TSWORKFLOW_WEBHOOK_SECRET: props.webhookSecret.secretValue.unsafeUnwrap() } }
            : {}),
        })
      : undefined;
    this.sweeperFunction = create("Sweeper", settings.handlerNames.sweeper, {
      memorySize: settings.memorySize,
      timeout: Duration.minutes(5),
      description: "tsworkflow: re-sends what runs miss (lost timers and messages)",
    });
    this.reaperFunction = create("Reaper", settings.handlerNames.reaper, {
      memorySize: settings.memorySize,
      timeout: Duration.minutes(5),
      description: "tsworkflow: deletes what is left of expired runs",
    });

    // Each deploy publishes a version; the alias moves to it. Consumers first, producers last: the step
    // function, then the workflow function, then what starts runs, so that new messages rarely reach old
    // code (and when they do, the handlers retry with backoff).
    const step = liveAlias(this.stepFunction);
    const workflow = liveAlias(this.workflowFunction);
    workflow.node.addDependency(step);
    const start = liveAlias(this.startFunction);
    start.node.addDependency(workflow);
    const webhook = this.webhookFunction ? liveAlias(this.webhookFunction) : undefined;
    webhook?.node.addDependency(workflow);
    this.aliases = {
      workflow,
      step,
      start,
      webhook,
      sweeper: liveAlias(this.sweeperFunction),
      reaper: liveAlias(this.reaperFunction),
    };

    // Public on purpose: the caller is a third party; the one-time token (and the optional HMAC) guard it.
    this.webhookUrl = webhook?.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    workflow.addEventSource(
      new eventSources.SqsEventSource(this.workflowQueue, {
        batchSize: settings.workflowBatchSize,
        reportBatchItemFailures: true,
      }),
    );
    step.addEventSource(
      new eventSources.SqsEventSource(this.stepQueue, {
        batchSize: settings.stepBatchSize,
        reportBatchItemFailures: true,
      }),
    );
    new events.Rule(this, "SweepSchedule", {
      description: "tsworkflow: runs the sweeper",
      schedule: events.Schedule.rate(settings.sweepInterval),
      targets: [new eventTargets.LambdaFunction(this.aliases.sweeper, { retryAttempts: 2 })],
    });
    this.aliases.reaper.addEventSource(
      new eventSources.DynamoEventSource(this.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        bisectBatchOnError: true,
        retryAttempts: 10,
        // Only run documents that DynamoDB's TTL deleted: the reaper is invoked for nothing else.
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.isEqual("REMOVE"),
            userIdentity: {
              type: lambda.FilterRule.isEqual("Service"),
              principalId: lambda.FilterRule.isEqual("dynamodb.amazonaws.com"),
            },
            dynamodb: { Keys: { sk: { S: lambda.FilterRule.isEqual("RUN") } } },
          }),
        ],
      }),
    );

    grantFunctions(this, settings.scheduleGroupName);
    if (props.schedules) grantScheduleFunctions(this, settings.scheduleGroupName);
    Validations.of(this.reaperFunction.role as iam.Role).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "The stream event source grants dynamodb:ListStreams (and X-Ray active tracing, with the tracing prop, xray:PutTraceSegments), which have no resource-level permission; every other statement names the table's stream.",
    });
    if (settings.tracing) {
      // The reaper's role acknowledges the same finding below (dynamodb:ListStreams).
      for (const fn of this.functions.filter((candidate) => candidate !== this.reaperFunction)) {
        Validations.of(fn.role as iam.Role).acknowledge({
          id: "AwsSolutions-IAM5[Resource::*]",
          reason:
            "X-Ray active tracing (the tracing prop) grants xray:PutTraceSegments and xray:PutTelemetryRecords, which have no resource-level permission.",
        });
      }
    }
    this.alarms = createAlarms(this, settings, props.alarmTopic);
    this.dashboard = props.dashboard
      ? createDashboard(this, props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE)
      : undefined;

    const outputs: [string, string, string][] = [
      ["TableName", this.table.tableName, "DynamoDB table of runs (TSWORKFLOW_TABLE_NAME)"],
      [
        "PayloadBucketName",
        this.payloadBucket.bucketName,
        "S3 bucket of large payloads (TSWORKFLOW_PAYLOAD_BUCKET)",
      ],
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
        "TimerDeadLetterQueueUrl",
        this.timerDeadLetterQueue.queueUrl,
        "Timers EventBridge Scheduler could not deliver",
      ],
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
        start.functionName,
        "Invoke with { workflow, args, idempotencyKey } (the live alias)",
      ],
      ["StartFunctionArn", start.functionArn, "ARN of the start function's live alias"],
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

  /** The functions of the kit (the webhook function only with `webhooks`). */
  get functions(): nodejs.NodejsFunction[] {
    return [
      this.workflowFunction,
      this.stepFunction,
      this.startFunction,
      ...(this.webhookFunction ? [this.webhookFunction] : []),
      this.sweeperFunction,
      this.reaperFunction,
    ];
  }

  /**
   * Lets `grantee` start runs and read them, both ways: invoke the start function (its `live` alias), or
   * use `createClient()` from `tsworkflow/aws` (set the variables of {@link clientEnvironment} on it).
   * Grants:
   * - `lambda:InvokeFunction` on the start function's `live` alias;
   * - `dynamodb:GetItem`, `dynamodb:PutItem`, `dynamodb:DeleteItem` (frees the idempotency key of an
   *   expired run) and `dynamodb:Query` (reads a large input kept in the log) on the table;
   * - `s3:PutObject` and `s3:GetObject` on the payload objects (inputs over 64 KB);
   * - `sqs:SendMessage` on the workflow queue (the run's first activation).
   * @example
   * workflows.grantStart(apiFunction);
   * for (const [name, value] of Object.entries(workflows.clientEnvironment())) apiFunction.addEnvironment(name, value);
   */
  grantStart(grantee: iam.IGrantable): iam.Grant {
    return this.aliases.start
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
          actions: ["s3:PutObject", "s3:GetObject"],
          resourceArns: [payloadObjects(this.payloadBucket)],
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
   * log and updates its document), and what {@link grantRead} grants (`listRuns`).
   */
  grantRunControl(grantee: iam.IGrantable): iam.Grant {
    return this.grantStart(grantee)
      .combine(this.grantRead(grantee))
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: ["dynamodb:UpdateItem"],
          resourceArns: [this.table.tableArn],
        }),
      );
  }

  /**
   * Lets `grantee` manage the deployment's schedules with `createClient()` (`listSchedules`,
   * `pauseSchedule`, `resumeSchedule`, `triggerSchedule`, `deleteSchedule`): what {@link grantStart}
   * grants (a trigger starts a run), `dynamodb:UpdateItem` on the table, `scheduler:GetSchedule`,
   * `scheduler:UpdateSchedule` and `scheduler:DeleteSchedule` on the recurring schedules of the kit's
   * group (`schedule.*`), and `iam:PassRole` of the scheduler role to EventBridge Scheduler (an update
   * passes it). Set `TSWORKFLOW_SCHEDULE_GROUP` on the grantee (see {@link clientEnvironment}).
   * @example
   * workflows.grantScheduleControl(opsFunction);
   */
  grantScheduleControl(grantee: iam.IGrantable): iam.Grant {
    return this.grantStart(grantee)
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: ["dynamodb:UpdateItem"],
          resourceArns: [this.table.tableArn],
        }),
      )
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: ["scheduler:GetSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
          resourceArns: [recurringSchedulesArn(this, this.scheduleGroup.scheduleGroupName)],
        }),
      )
      .combine(this.schedulerRole.grantPassRole(grantee.grantPrincipal));
  }

  /**
   * Lets `grantee` read runs with `createClient()`: `listRuns`, `getRun`, `getEvents`. Grants
   * `dynamodb:GetItem`, `dynamodb:Query` and `dynamodb:BatchGetItem` on the table and its indexes, and
   * `s3:GetObject` on the payload objects.
   * @example
   * workflows.grantRead(dashboardFunction);
   */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [...READ_TABLE_ACTIONS],
      resourceArns: tableAndIndexes(this),
    }).combine(
      iam.Grant.addToPrincipal({
        grantee,
        actions: ["s3:GetObject"],
        resourceArns: [payloadObjects(this.payloadBucket)],
      }),
    );
  }

  /**
   * The environment of a function that starts runs: what `createClient()` reads
   * (`TSWORKFLOW_TABLE_NAME`, `TSWORKFLOW_WORKFLOW_QUEUE_URL`, `TSWORKFLOW_PAYLOAD_BUCKET`,
   * `TSWORKFLOW_SCHEDULE_GROUP` for the schedule methods) and the start
   * function's alias (`TSWORKFLOW_START_FUNCTION`) for callers that invoke it. Lambda sets `AWS_REGION`.
   */
  clientEnvironment(): Record<string, string> {
    return {
      TSWORKFLOW_TABLE_NAME: this.table.tableName,
      TSWORKFLOW_WORKFLOW_QUEUE_URL: this.workflowQueue.queueUrl,
      TSWORKFLOW_PAYLOAD_BUCKET: this.payloadBucket.bucketName,
      TSWORKFLOW_START_FUNCTION: this.aliases.start.functionArn,
      TSWORKFLOW_SCHEDULE_GROUP: this.scheduleGroup.scheduleGroupName,
    };
  }

  /** Age of the oldest activation waiting (seconds): activations are late. @default maximum over 1 minute */
  metricWorkflowQueueAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.workflowQueue.metricApproximateAgeOfOldestMessage({
      statistic: cloudwatch.Stats.MAXIMUM,
      ...props,
    });
  }

  /** Age of the oldest step task waiting (seconds): steps are late. @default maximum over 1 minute */
  metricStepQueueAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stepQueue.metricApproximateAgeOfOldestMessage({
      statistic: cloudwatch.Stats.MAXIMUM,
      ...props,
    });
  }

  /** Messages in the workflow, step and timer DLQs together: stuck runs. @default maximum over 1 minute */
  metricDeadLetterMessages(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    const visible = (queue: sqs.Queue) =>
      queue.metricApproximateNumberOfMessagesVisible({ statistic: cloudwatch.Stats.MAXIMUM });
    return new cloudwatch.MathExpression({
      expression: "workflow + step + timer",
      usingMetrics: {
        workflow: visible(this.workflowDeadLetterQueue),
        step: visible(this.stepDeadLetterQueue),
        timer: visible(this.timerDeadLetterQueue),
      },
      label: "Messages in the dead-letter queues",
      period: Duration.minutes(1),
      ...props,
    });
  }

  /** Errors of all the kit's functions (crashes and timeouts). @default sum over 5 minutes */
  metricErrors(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return this.sumOverFunctions("Errors of the tsworkflow functions", (fn) => fn.metricErrors(), props);
  }

  /** Throttles of all the kit's functions. @default sum over 5 minutes */
  metricThrottles(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return this.sumOverFunctions(
      "Throttles of the tsworkflow functions",
      (fn) => fn.metricThrottles(),
      props,
    );
  }

  /** Requests the table throttled (reads and writes). @default sum over 5 minutes */
  metricTableThrottles(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    const metric = (name: string) =>
      new cloudwatch.Metric({
        namespace: "AWS/DynamoDB",
        metricName: name,
        dimensionsMap: { TableName: this.table.tableName },
        statistic: cloudwatch.Stats.SUM,
      });
    return new cloudwatch.MathExpression({
      expression: "reads + writes",
      usingMetrics: { reads: metric("ReadThrottleEvents"), writes: metric("WriteThrottleEvents") },
      label: "Throttled requests of the run table",
      period: Duration.minutes(5),
      ...props,
    });
  }

  private sumOverFunctions(
    label: string,
    metric: (fn: lambda.IFunction) => cloudwatch.IMetric,
    props?: cloudwatch.MathExpressionOptions,
  ): cloudwatch.MathExpression {
    const usingMetrics = Object.fromEntries(this.functions.map((fn, index) => [`f${index}`, metric(fn)]));
    return new cloudwatch.MathExpression({
      expression: Object.keys(usingMetrics).join(" + "),
      usingMetrics,
      label,
      period: Duration.minutes(5),
      ...props,
    });
  }
}
