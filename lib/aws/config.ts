import { ConfigurationError } from "../core/errors.ts";
import { optional } from "../core/optional.ts";
import * as z from "../core/schema.ts";

/**
 * Configuration of the AWS runtime, read from environment variables at cold start. The CDK construct
 * sets exactly these variables on the Lambda functions it creates.
 */
export interface AwsConfig {
  /** `TSWORKFLOW_TABLE_NAME`: the DynamoDB table (layout in `TABLE_SCHEMA`). */
  tableName: string;
  /** `TSWORKFLOW_WORKFLOW_QUEUE_URL`: the FIFO queue of activations (`.fifo`). */
  workflowQueueUrl: string;
  /** `TSWORKFLOW_STEP_QUEUE_URL`: the standard queue of step tasks and short timers. */
  stepQueueUrl: string;
  /** `TSWORKFLOW_STEP_QUEUE_ARN`: the step queue's ARN, the target of long timers' schedules. */
  stepQueueArn: string;
  /** `TSWORKFLOW_SCHEDULE_GROUP`: the EventBridge Scheduler group of the kit's one-time schedules. */
  scheduleGroup: string;
  /** `TSWORKFLOW_SCHEDULER_ROLE_ARN`: the role EventBridge Scheduler assumes to send to the step queue. */
  schedulerRoleArn: string;
  /** `AWS_REGION` (set by Lambda). */
  region: string;
  /** Endpoint overrides for emulators and LocalStack; unset in AWS. */
  endpoints: {
    /** `TSWORKFLOW_DYNAMODB_ENDPOINT` */
    dynamodb?: string;
    /** `TSWORKFLOW_SQS_ENDPOINT` */
    sqs?: string;
    /** `TSWORKFLOW_SCHEDULER_ENDPOINT` */
    scheduler?: string;
    /** `TSWORKFLOW_S3_ENDPOINT` (path-style requests) */
    s3?: string;
  };
  /**
   * `TSWORKFLOW_PAYLOAD_BUCKET`: the S3 bucket of payloads over 64 KB (up to 10 MB each).
   * @default none: payloads are capped at 255 KB
   */
  payloadBucket?: string;
  /**
   * `TSWORKFLOW_TIMER_DLQ_ARN`: the queue where EventBridge Scheduler puts a timer it could not deliver
   * within its retry policy (the construct alarms on it; the sweeper re-arms the timer).
   * @default none: schedules have no dead-letter queue
   */
  timerDeadLetterQueueArn?: string;
  /**
   * `TSWORKFLOW_SWEEP_STALE_SECONDS`: the sweeper activates again a pending or running run unchanged for
   * this long (the construct sets twice the step queue's visibility timeout).
   * @default 3600
   */
  sweepStaleAfterSeconds?: number;
  /**
   * `TSWORKFLOW_TTL_DAYS`: days a finished run is kept.
   * @default 30
   */
  ttlDays: number;
}

/** What a Lambda that only starts runs and reads them needs. */
export type ClientConfig = Pick<AwsConfig, "tableName" | "workflowQueueUrl" | "region" | "endpoints"> &
  Partial<Pick<AwsConfig, "ttlDays" | "payloadBucket" | "scheduleGroup">>;

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
const GROUP_NAME = /^[0-9A-Za-z_.-]{1,64}$/;
const SQS_ARN = /^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** True for an http:// or https:// URL (the endpoints and queue URLs; the CLI checks its endpoint flags with it). */
export const isHttpUrl = (value: string) => {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:";
  } catch {
    return false;
  }
};
const isSqsArn = z.regex(SQS_ARN, "must be arn:aws:sqs:<region>:<12-digit account>:<queue name>");
const httpUrl = z.string().check(z.refine(isHttpUrl, "must be an http(s) URL"));

/** An optional variable: unset and blank are the same, surrounding spaces do not count. */
const blankAsUnset = z.transform((value: string | undefined) =>
  value === undefined || value.trim() === "" ? undefined : value.trim(),
);

/** An optional variable that, when set, must match `schema`. */
const unlessBlank = <S extends z.ZodMiniType<unknown, string>>(schema: S) =>
  z.pipe(z.optional(z.string()), z.pipe(blankAsUnset, z.optional(schema)));

const optionalEndpoint = unlessBlank(httpUrl);

/** Days until a finished run expires: unset or blank is 30, otherwise a positive number up to 3650. */
const ttlDays = z.pipe(
  z.optional(z.string()),
  z.transform((value: string | undefined, context) => {
    const text = value === undefined || value.trim() === "" ? "30" : value;
    const days = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
    const problem = !(days > 0)
      ? "must be a positive number of days"
      : days > 3650
        ? "must be at most 3650 days"
        : undefined;
    if (problem) context.issues.push({ code: "custom", message: problem, input: value });
    return days;
  }),
);

const variables = {
  TSWORKFLOW_TABLE_NAME: z
    .string()
    .check(z.regex(TABLE_NAME, "must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")),
  TSWORKFLOW_WORKFLOW_QUEUE_URL: httpUrl.check(
    z.refine((value) => value.endsWith(".fifo"), "must be the URL of a FIFO queue (ending in .fifo)"),
  ),
  TSWORKFLOW_STEP_QUEUE_URL: httpUrl.check(
    z.refine((value) => !value.endsWith(".fifo"), "must be the URL of a standard (not FIFO) queue"),
  ),
  TSWORKFLOW_STEP_QUEUE_ARN: z.string().check(
    isSqsArn,
    z.refine(
      (value) => !value.endsWith(".fifo"),
      "must be the ARN of the standard step queue, not a FIFO queue",
    ),
  ),
  TSWORKFLOW_SCHEDULE_GROUP: z
    .string()
    .check(z.regex(GROUP_NAME, "must be a schedule group name (1-64 of 0-9 A-Z a-z _ . -)")),
  TSWORKFLOW_SCHEDULER_ROLE_ARN: z
    .string()
    .check(z.regex(ROLE_ARN, "must be arn:aws:iam::<12-digit account>:role/<role name>")),
  AWS_REGION: z.string().check(z.regex(REGION, "must be an AWS region such as us-east-1")),
  TSWORKFLOW_DYNAMODB_ENDPOINT: optionalEndpoint,
  TSWORKFLOW_SQS_ENDPOINT: optionalEndpoint,
  TSWORKFLOW_SCHEDULER_ENDPOINT: optionalEndpoint,
  TSWORKFLOW_TTL_DAYS: ttlDays,
} as const;

const optionalBucket = unlessBlank(
  z.string().check(z.regex(BUCKET_NAME, "must be an S3 bucket name (3-63 of a-z 0-9 . -)")),
);

const fullSchema = z.object({
  ...variables,
  TSWORKFLOW_S3_ENDPOINT: optionalEndpoint,
  TSWORKFLOW_PAYLOAD_BUCKET: optionalBucket,
  TSWORKFLOW_TIMER_DLQ_ARN: unlessBlank(z.string().check(isSqsArn)),
  TSWORKFLOW_SWEEP_STALE_SECONDS: unlessBlank(
    z.pipe(z.string().check(z.regex(/^\d+$/, "must be a whole number of seconds")), z.transform(Number)),
  ),
});
// Built when a client reads its configuration: a function bundle that does not use it leaves it out.
const clientSchema = () =>
  z.object({
    TSWORKFLOW_TABLE_NAME: variables.TSWORKFLOW_TABLE_NAME,
    TSWORKFLOW_WORKFLOW_QUEUE_URL: variables.TSWORKFLOW_WORKFLOW_QUEUE_URL,
    AWS_REGION: variables.AWS_REGION,
    TSWORKFLOW_DYNAMODB_ENDPOINT: optionalEndpoint,
    TSWORKFLOW_SQS_ENDPOINT: optionalEndpoint,
    TSWORKFLOW_TTL_DAYS: variables.TSWORKFLOW_TTL_DAYS,
    TSWORKFLOW_S3_ENDPOINT: optionalEndpoint,
    TSWORKFLOW_PAYLOAD_BUCKET: optionalBucket,
    TSWORKFLOW_SCHEDULE_GROUP: unlessBlank(variables.TSWORKFLOW_SCHEDULE_GROUP),
    TSWORKFLOW_SCHEDULER_ENDPOINT: optionalEndpoint,
  });

type Environment = Record<string, string | undefined>;

function parse<S extends z.ZodMiniType>(schema: S, env: Environment, purpose: string): z.infer<S> {
  const parsed = z.safeParseWithMessages(schema, env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "(environment)");
    const value = env[name];
    const found = value === undefined ? "it is not set" : `it is ${JSON.stringify(value)}`;
    const message = value === undefined ? "is required" : issue.message;
    return `${name} ${message} (${found})`;
  });
  throw new ConfigurationError(
    `Invalid tsworkflow ${purpose} configuration: ${problems.join("; ")}. DurableWorkflows sets these variables; deployed another way, set them on the function.`,
  );
}

/**
 * Reads and validates the AWS runtime's configuration. Call it once at cold start.
 * @example
 * import { loadConfig } from "tsworkflow/aws";
 * const config = loadConfig(); // reads process.env
 * @throws ConfigurationError naming every missing or invalid variable, in one message
 */
export function loadConfig(env: Environment = process.env): AwsConfig {
  const values = parse(fullSchema, env, "AWS");
  return {
    tableName: values.TSWORKFLOW_TABLE_NAME,
    workflowQueueUrl: values.TSWORKFLOW_WORKFLOW_QUEUE_URL,
    stepQueueUrl: values.TSWORKFLOW_STEP_QUEUE_URL,
    stepQueueArn: values.TSWORKFLOW_STEP_QUEUE_ARN,
    scheduleGroup: values.TSWORKFLOW_SCHEDULE_GROUP,
    schedulerRoleArn: values.TSWORKFLOW_SCHEDULER_ROLE_ARN,
    region: values.AWS_REGION,
    endpoints: endpoints(
      values.TSWORKFLOW_DYNAMODB_ENDPOINT,
      values.TSWORKFLOW_SQS_ENDPOINT,
      values.TSWORKFLOW_SCHEDULER_ENDPOINT,
      values.TSWORKFLOW_S3_ENDPOINT,
    ),
    ttlDays: values.TSWORKFLOW_TTL_DAYS,
    ...optional("payloadBucket", values.TSWORKFLOW_PAYLOAD_BUCKET),
    ...optional("timerDeadLetterQueueArn", values.TSWORKFLOW_TIMER_DLQ_ARN),
    ...optional("sweepStaleAfterSeconds", values.TSWORKFLOW_SWEEP_STALE_SECONDS),
  };
}

/**
 * Reads the smaller configuration of a client that starts runs and reads them
 * (`TSWORKFLOW_TABLE_NAME`, `TSWORKFLOW_WORKFLOW_QUEUE_URL`, `AWS_REGION`; `TSWORKFLOW_SCHEDULE_GROUP`
 * to manage schedules).
 * @throws ConfigurationError naming every missing or invalid variable, in one message
 */
export function loadClientConfig(env: Environment = process.env): ClientConfig {
  const values = parse(clientSchema(), env, "client");
  return {
    tableName: values.TSWORKFLOW_TABLE_NAME,
    workflowQueueUrl: values.TSWORKFLOW_WORKFLOW_QUEUE_URL,
    region: values.AWS_REGION,
    endpoints: endpoints(
      values.TSWORKFLOW_DYNAMODB_ENDPOINT,
      values.TSWORKFLOW_SQS_ENDPOINT,
      values.TSWORKFLOW_SCHEDULER_ENDPOINT,
      values.TSWORKFLOW_S3_ENDPOINT,
    ),
    ttlDays: values.TSWORKFLOW_TTL_DAYS,
    ...optional("payloadBucket", values.TSWORKFLOW_PAYLOAD_BUCKET),
    ...optional("scheduleGroup", values.TSWORKFLOW_SCHEDULE_GROUP),
  };
}

/** The environment variables that carry `config`: what the CDK construct sets, and what tests use. */
export function configToEnvironment(config: AwsConfig): Record<string, string> {
  return {
    TSWORKFLOW_TABLE_NAME: config.tableName,
    TSWORKFLOW_WORKFLOW_QUEUE_URL: config.workflowQueueUrl,
    TSWORKFLOW_STEP_QUEUE_URL: config.stepQueueUrl,
    TSWORKFLOW_STEP_QUEUE_ARN: config.stepQueueArn,
    TSWORKFLOW_SCHEDULE_GROUP: config.scheduleGroup,
    TSWORKFLOW_SCHEDULER_ROLE_ARN: config.schedulerRoleArn,
    AWS_REGION: config.region,
    TSWORKFLOW_TTL_DAYS: String(config.ttlDays),
    ...(config.endpoints.dynamodb ? { TSWORKFLOW_DYNAMODB_ENDPOINT: config.endpoints.dynamodb } : {}),
    ...(config.endpoints.sqs ? { TSWORKFLOW_SQS_ENDPOINT: config.endpoints.sqs } : {}),
    ...(config.endpoints.scheduler ? { TSWORKFLOW_SCHEDULER_ENDPOINT: config.endpoints.scheduler } : {}),
    ...(config.endpoints.s3 ? { TSWORKFLOW_S3_ENDPOINT: config.endpoints.s3 } : {}),
    ...(config.payloadBucket ? { TSWORKFLOW_PAYLOAD_BUCKET: config.payloadBucket } : {}),
    ...(config.timerDeadLetterQueueArn ? { TSWORKFLOW_TIMER_DLQ_ARN: config.timerDeadLetterQueueArn } : {}),
    ...(config.sweepStaleAfterSeconds === undefined
      ? {}
      : { TSWORKFLOW_SWEEP_STALE_SECONDS: String(config.sweepStaleAfterSeconds) }),
  };
}

function endpoints(
  dynamodb: string | undefined,
  sqs: string | undefined,
  scheduler: string | undefined,
  s3: string | undefined,
): AwsConfig["endpoints"] {
  return {
    ...optional("dynamodb", dynamodb),
    ...optional("sqs", sqs),
    ...optional("scheduler", scheduler),
    ...optional("s3", s3),
  };
}
