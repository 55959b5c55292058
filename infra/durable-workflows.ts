import {
  type aws_cloudwatch as cloudwatch,
  type aws_dynamodb as dynamodb,
  type aws_iam as iam,
  aws_lambda as lambda,
  type aws_lambda_nodejs as nodejs,
  type aws_s3 as s3,
  aws_scheduler as scheduler,
  type aws_sqs as sqs,
} from "aws-cdk-lib";
import { Construct } from "constructs";
import { createAlarms, createDashboard } from "./alarms.ts";
import { clientEnvironment, functionEnvironment } from "./environment.ts";
import { createKitFunctions, type KitAliases, publishAliases } from "./functions.ts";
import { grantRead, grantRunControl, grantScheduleControl, grantStart } from "./grants.ts";
import { deadLetterMessages, queueAge, sumOverFunctions, tableThrottles } from "./metrics.ts";
import { createOutputs } from "./outputs.ts";
import { acknowledgeServiceWildcards, grantFunctions, grantScheduleFunctions } from "./permissions.ts";
import { type DurableWorkflowsProps, resolveProps } from "./props.ts";
import { createQueues, createSchedulerRole } from "./queues.ts";
import { DEFAULT_METRICS_NAMESPACE } from "./run-metrics.ts";
import { createPayloadBucket, createTable } from "./storage.ts";
import { connectTriggers } from "./triggers.ts";

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
  readonly aliases: KitAliases;
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

    const functions = createKitFunctions(
      this,
      settings,
      props,
      functionEnvironment(this, settings, props.endpoints),
    );
    this.workflowFunction = functions.workflow;
    this.stepFunction = functions.step;
    this.startFunction = functions.start;
    this.webhookFunction = functions.webhook;
    this.sweeperFunction = functions.sweeper;
    this.reaperFunction = functions.reaper;
    this.aliases = publishAliases(functions);

    // Public on purpose: the caller is a third party; the one-time token (and the optional HMAC) guard it.
    this.webhookUrl = this.aliases.webhook?.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    connectTriggers(this, settings);

    grantFunctions(this, settings.scheduleGroupName);
    if (props.schedules) grantScheduleFunctions(this, settings.scheduleGroupName);
    acknowledgeServiceWildcards(this, settings.tracing);
    this.alarms = createAlarms(this, settings, props.alarmTopic);
    this.dashboard = props.dashboard
      ? createDashboard(this, props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE)
      : undefined;
    createOutputs(this, settings.scheduleGroupName);
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
    return grantStart(this, grantee);
  }

  /**
   * Lets `grantee` do everything `createClient()` from `tsworkflow/aws` does: what {@link grantStart}
   * grants, plus `dynamodb:UpdateItem` on the table, which `retryRun` needs (it appends to the run's
   * log and updates its document), and what {@link grantRead} grants (`listRuns`).
   */
  grantRunControl(grantee: iam.IGrantable): iam.Grant {
    return grantRunControl(this, grantee);
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
    return grantScheduleControl(this, grantee);
  }

  /**
   * Lets `grantee` read runs with `createClient()`: `listRuns`, `getRun`, `getEvents`. Grants
   * `dynamodb:GetItem`, `dynamodb:Query` and `dynamodb:BatchGetItem` on the table and its indexes, and
   * `s3:GetObject` on the payload objects.
   * @example
   * workflows.grantRead(dashboardFunction);
   */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    return grantRead(this, grantee);
  }

  /**
   * The environment of a function that starts runs: what `createClient()` reads
   * (`TSWORKFLOW_TABLE_NAME`, `TSWORKFLOW_WORKFLOW_QUEUE_URL`, `TSWORKFLOW_PAYLOAD_BUCKET`,
   * `TSWORKFLOW_SCHEDULE_GROUP` for the schedule methods) and the start
   * function's alias (`TSWORKFLOW_START_FUNCTION`) for callers that invoke it. Lambda sets `AWS_REGION`.
   */
  clientEnvironment(): Record<string, string> {
    return clientEnvironment(this);
  }

  /** Age of the oldest activation waiting (seconds): activations are late. @default maximum over 1 minute */
  metricWorkflowQueueAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return queueAge(this.workflowQueue, props);
  }

  /** Age of the oldest step task waiting (seconds): steps are late. @default maximum over 1 minute */
  metricStepQueueAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return queueAge(this.stepQueue, props);
  }

  /** Messages in the workflow, step and timer DLQs together: stuck runs. @default maximum over 1 minute */
  metricDeadLetterMessages(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return deadLetterMessages(this, props);
  }

  /** Errors of all the kit's functions (crashes and timeouts). @default sum over 5 minutes */
  metricErrors(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return sumOverFunctions(this, "Errors of the tsworkflow functions", (fn) => fn.metricErrors(), props);
  }

  /** Throttles of all the kit's functions. @default sum over 5 minutes */
  metricThrottles(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return sumOverFunctions(
      this,
      "Throttles of the tsworkflow functions",
      (fn) => fn.metricThrottles(),
      props,
    );
  }

  /** Requests the table throttled (reads and writes). @default sum over 5 minutes */
  metricTableThrottles(props?: cloudwatch.MathExpressionOptions): cloudwatch.MathExpression {
    return tableThrottles(this, props);
  }
}
