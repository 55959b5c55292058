import { existsSync, statSync } from "node:fs";
import {
  Duration,
  type aws_lambda as lambda,
  aws_logs as logs,
  Names,
  RemovalPolicy,
  type aws_secretsmanager as secretsmanager,
  type aws_sns as sns,
  Token,
} from "aws-cdk-lib";
import type { Construct } from "constructs";
import { ConfigurationError } from "../lib/core/errors.ts";
import { checkOptionNames } from "../lib/core/options.ts";
import { assertLocalEsbuild } from "./bundling.ts";
import { checkRuntime, TESTED_RUNTIME } from "./runtime.ts";

/** The export names the construct looks for in `entry`, unless overridden. */
export const DEFAULT_HANDLER_NAMES = {
  workflow: "workflowHandler",
  step: "stepHandler",
  start: "startHandler",
  webhook: "webhookHandler",
  sweeper: "sweeperHandler",
  reaper: "reaperHandler",
} as const;

/** Export names of the handlers in the entry file. */
export interface HandlerNames {
  /** @default "workflowHandler" */
  readonly workflow?: string;
  /** @default "stepHandler" */
  readonly step?: string;
  /** @default "startHandler" */
  readonly start?: string;
  /** @default "webhookHandler" (used when `webhooks` is on) */
  readonly webhook?: string;
  /** @default "sweeperHandler" */
  readonly sweeper?: string;
  /** @default "reaperHandler" */
  readonly reaper?: string;
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
  /** @default the SDK's endpoint resolution */
  readonly s3?: string;
}

/** Properties of {@link DurableWorkflows}. */
export interface DurableWorkflowsProps {
  /**
   * Path of the TypeScript (or JavaScript) file that exports the Lambda handlers, usually built
   * with `createHandlers({ workflows: [...] })` from `tsworkflow/aws`. It is bundled with the local
   * esbuild (never Docker); the AWS SDK v3 is left to the Lambda runtime.
   */
  readonly entry: string;
  /**
   * Export names of the handlers in `entry`.
   * @default { workflow: "workflowHandler", step: "stepHandler", start: "startHandler", webhook: "webhookHandler", sweeper: "sweeperHandler", reaper: "reaperHandler" }
   */
  readonly handlerNames?: HandlerNames;
  /**
   * The Lambda runtime of every function of the kit: a Node.js runtime, `nodejs20.x` or later. The bundle
   * targets its Node.js version. On the default, the one tsworkflow's handlers are built and tested for,
   * the construct acknowledges cdk-nag's AwsSolutions-L1 ("latest runtime"), which a newer aws-cdk-lib
   * raises as soon as it knows a newer Node.js; any other runtime is checked by cdk-nag as usual.
   * @default lambda.Runtime.NODEJS_24_X
   * @example
   * new DurableWorkflows(this, "Workflows", { entry: "src/workflows-lambda.ts", runtime: lambda.Runtime.NODEJS_26_X });
   */
  readonly runtime?: lambda.Runtime;
  /**
   * Memory of every function of the kit but the step function, in MiB (128 to 10240): the workflow,
   * start, sweeper and reaper functions, and the webhook function with `webhooks`. Replay is light: the
   * default is enough for logs of thousands of events.
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
   * How long a finished run is kept, counted from its finish (`TSWORKFLOW_TTL_DAYS`): then DynamoDB's
   * TTL deletes its document and the reaper function the rest of it (log, outcomes, S3 payloads).
   * Nothing of a live run expires. Whole days, 1 to 3650.
   * @default Duration.days(30)
   */
  readonly retention?: Duration;
  /**
   * How often the sweeper function looks for runs that lost a message or a timer and re-sends what
   * they miss (1 to 60 minutes).
   * @default Duration.minutes(5)
   */
  readonly sweepInterval?: Duration;
  /**
   * A CloudWatch dashboard of the kit: runs per status, step attempts, errors and retries, step run time,
   * schedule-to-start and timer lateness (from the functions' embedded metrics, when their handlers use
   * `cloudWatchMetrics`), queue depths and ages, dead-letter queues, each function's invocations, errors,
   * duration and throttles, and the table's capacity and throttles.
   * @default false
   */
  readonly dashboard?: boolean;
  /**
   * The CloudWatch namespace of the run metrics the dashboard charts: the `namespace` of the Powertools
   * `Metrics` given to `cloudWatchMetrics` in the handlers. 1 to 255 of `A-Z a-z 0-9 . - _ / # :` and
   * spaces, not blank, not starting with `AWS/` (CloudWatch's rule for custom namespaces).
   * @default "tsworkflow"
   */
  readonly metricsNamespace?: string;
  /**
   * X-Ray active tracing on every function of the kit: Lambda records each invocation (and the AWS SDK
   * calls, with the ADOT layer or an OpenTelemetry SDK the app registers). tsworkflow's own spans (one
   * trace per run, see the README's Observability section) go wherever the app's OpenTelemetry SDK exports.
   * @default false
   * @example
   * new DurableWorkflows(this, "Workflows", { entry: "src/workflows.ts", tracing: true });
   */
  readonly tracing?: boolean;
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
   * Extra environment variables for every function of the kit (your steps' settings). Names starting
   * with `TSWORKFLOW_` or `AWS_`, and `NODE_OPTIONS`, are reserved.
   * @default none
   */
  readonly environment?: Record<string, string>;
  /**
   * Endpoint overrides for emulators.
   * @default none: the SDK's endpoint resolution
   */
  readonly endpoints?: EndpointOverrides;
  /**
   * Serve `POST /hooks/<token>` (the calls that resume runs waiting on `createWebhook()`) from a sixth
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
  /**
   * The entry declares schedules (`createHandlers({ schedules: awsSchedules([...]) })`): the sweeper
   * function may create, update and delete the recurring schedules named `schedule.*` in the kit's
   * schedule group (passing the scheduler role) and write their state items, and the step function may
   * start the ticks' runs. Off, the functions get none of these permissions.
   * @default false
   */
  readonly schedules?: boolean;
}

/** The properties, checked, with their defaults filled in. */
export interface Settings {
  entry: string;
  handlerNames: Required<HandlerNames>;
  runtime: lambda.Runtime;
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
  sweepInterval: Duration;
  maxReceiveCount: number;
  workflowBatchSize: number;
  stepBatchSize: number;
  maxMessageAge: Duration;
  environment: Record<string, string>;
  tracing: boolean;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const GROUP_NAME = /^[0-9A-Za-z_.-]{1,64}$/;
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
const ENV_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/** CloudWatch's rule for a custom namespace: 1-255 of these characters, not blank, not `AWS/…` or `:…`. */
const METRICS_NAMESPACE = /^(?!AWS\/|:)(?=.*[^ ])[\w.\-/#: ]{1,255}$/;
/** AWS's advice for SQS event sources: a visibility timeout of six times the function timeout. */
const VISIBILITY_FACTOR = 6;
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;

/** Every property's name, for the check of misspelt ones (the compiler keeps the list whole). */
const PROP_NAMES = Object.keys({
  entry: 1,
  handlerNames: 1,
  runtime: 1,
  memorySize: 1,
  stepMemorySize: 1,
  workflowTimeout: 1,
  stepTimeout: 1,
  startTimeout: 1,
  logRetention: 1,
  removalPolicy: 1,
  alarmTopic: 1,
  tableName: 1,
  scheduleGroupName: 1,
  retention: 1,
  sweepInterval: 1,
  dashboard: 1,
  metricsNamespace: 1,
  tracing: 1,
  maxReceiveCount: 1,
  workflowBatchSize: 1,
  stepBatchSize: 1,
  maxMessageAge: 1,
  environment: 1,
  endpoints: 1,
  webhooks: 1,
  webhookSecret: 1,
  schedules: 1,
} satisfies Record<keyof DurableWorkflowsProps, 1>);

/** Checks every property, naming the property and the bad value, and fills in the defaults. */
export function resolveProps(scope: Construct, props: DurableWorkflowsProps): Settings {
  const fail = (message: string): never => {
    throw new ConfigurationError(`DurableWorkflows (${scope.node.path}): ${message}`);
  };
  // Numbers as written: JSON would show NaN and Infinity as null.
  const show = (value: unknown) =>
    typeof value === "number" ? String(value) : (JSON.stringify(value) ?? String(value));

  // A misspelt property (stepTimout) would leave its default in place without a word.
  const owner = `DurableWorkflows (${scope.node.path})`;
  checkOptionNames(owner, props, PROP_NAMES);
  if (props.handlerNames !== undefined)
    checkOptionNames(owner, props.handlerNames, Object.keys(DEFAULT_HANDLER_NAMES), "handlerNames");
  if (props.endpoints !== undefined)
    checkOptionNames(owner, props.endpoints, ["dynamodb", "sqs", "scheduler", "s3"], "endpoints");
  if (typeof props.entry !== "string" || props.entry.trim() === "")
    fail(`entry must be the path of the file that exports the handlers; it is ${show(props.entry)}.`);
  if (!existsSync(props.entry) || !statSync(props.entry).isFile())
    fail(`entry ${show(props.entry)} is not a file (paths are relative to ${process.cwd()}).`);

  const handlerNames = { ...DEFAULT_HANDLER_NAMES, ...props.handlerNames };
  for (const [kind, name] of Object.entries(handlerNames)) {
    if (!IDENTIFIER.test(name))
      fail(`handlerNames.${kind} must be the name of an export of the entry; it is ${show(name)}.`);
  }

  const runtime = checkRuntime(props.runtime ?? TESTED_RUNTIME, fail);

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

  const retention = props.retention ?? Duration.days(30);
  const ttlDays = retention.toDays({ integral: false });
  if (!(Number.isInteger(ttlDays) && ttlDays >= 1 && ttlDays <= 3650))
    fail(`retention must be whole days from 1 to 3650; it is ${retention.toHumanString()}.`);
  const sweepInterval = props.sweepInterval ?? Duration.minutes(5);
  const sweepMinutes = sweepInterval.toMinutes({ integral: false });
  if (!(Number.isInteger(sweepMinutes) && sweepMinutes >= 1 && sweepMinutes <= 60))
    fail(`sweepInterval must be whole minutes from 1 to 60; it is ${sweepInterval.toHumanString()}.`);

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
  if (
    props.metricsNamespace !== undefined &&
    !Token.isUnresolved(props.metricsNamespace) &&
    !METRICS_NAMESPACE.test(props.metricsNamespace)
  )
    fail(
      `metricsNamespace must be a CloudWatch namespace (1-255 of A-Z a-z 0-9 . - _ / # : and spaces, not starting with "AWS/"); it is ${show(props.metricsNamespace)}.`,
    );
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
    runtime,
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
    sweepInterval,
    maxReceiveCount,
    workflowBatchSize,
    stepBatchSize,
    maxMessageAge,
    environment,
    tracing: props.tracing ?? false,
  };
}
