import { describe, expect, it } from "vitest";
import { configToEnvironment, loadClientConfig, loadConfig } from "../../lib/aws/config.ts";
import { ConfigurationError } from "../../lib/core/errors.ts";

const valid = {
  TSWORKFLOW_TABLE_NAME: "tsworkflow-runs",
  TSWORKFLOW_WORKFLOW_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/tsworkflow-workflow.fifo",
  TSWORKFLOW_STEP_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/tsworkflow-step",
  TSWORKFLOW_STEP_QUEUE_ARN: "arn:aws:sqs:eu-west-1:123456789012:tsworkflow-step",
  TSWORKFLOW_SCHEDULE_GROUP: "tsworkflow",
  TSWORKFLOW_SCHEDULER_ROLE_ARN: "arn:aws:iam::123456789012:role/tsworkflow-scheduler",
  AWS_REGION: "eu-west-1",
};

function errorOf(action: () => unknown): ConfigurationError {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error("expected a ConfigurationError");
}

describe("loadConfig", () => {
  it("reads every variable the CDK construct sets", () => {
    // Act
    const config = loadConfig(valid);
    // Assess
    expect(config).toEqual({
      tableName: "tsworkflow-runs",
      workflowQueueUrl: valid.TSWORKFLOW_WORKFLOW_QUEUE_URL,
      stepQueueUrl: valid.TSWORKFLOW_STEP_QUEUE_URL,
      stepQueueArn: valid.TSWORKFLOW_STEP_QUEUE_ARN,
      scheduleGroup: "tsworkflow",
      schedulerRoleArn: valid.TSWORKFLOW_SCHEDULER_ROLE_ARN,
      region: "eu-west-1",
      endpoints: {},
      ttlDays: 30,
    });
  });

  it("reads the payload bucket, the timer DLQ and the sweeper's stale time, and names a bad one", () => {
    // Act
    const config = loadConfig({
      ...valid,
      TSWORKFLOW_PAYLOAD_BUCKET: "tsworkflow-payloads-1",
      TSWORKFLOW_TIMER_DLQ_ARN: "arn:aws:sqs:eu-west-1:123456789012:tsworkflow-timer-dlq",
      TSWORKFLOW_SWEEP_STALE_SECONDS: "3600",
      TSWORKFLOW_S3_ENDPOINT: "http://127.0.0.1:4569",
    });
    const bad = errorOf(() =>
      loadConfig({
        ...valid,
        TSWORKFLOW_PAYLOAD_BUCKET: "Payloads_Bucket",
        TSWORKFLOW_SWEEP_STALE_SECONDS: "1h",
      }),
    );
    // Assess
    expect(config).toMatchObject({
      payloadBucket: "tsworkflow-payloads-1",
      timerDeadLetterQueueArn: "arn:aws:sqs:eu-west-1:123456789012:tsworkflow-timer-dlq",
      sweepStaleAfterSeconds: 3600,
      endpoints: { s3: "http://127.0.0.1:4569" },
    });
    expect(loadConfig(configToEnvironment(config))).toEqual(config);
    expect(bad.message).toContain(
      'TSWORKFLOW_PAYLOAD_BUCKET must be an S3 bucket name (3-63 of a-z 0-9 . -) (it is "Payloads_Bucket")',
    );
    expect(bad.message).toContain(
      'TSWORKFLOW_SWEEP_STALE_SECONDS must be a whole number of seconds (it is "1h")',
    );
  });

  it("takes endpoint overrides for emulators and LocalStack", () => {
    const config = loadConfig({
      ...valid,
      TSWORKFLOW_DYNAMODB_ENDPOINT: "http://127.0.0.1:8000",
      TSWORKFLOW_SQS_ENDPOINT: "http://127.0.0.1:4566",
      TSWORKFLOW_SCHEDULER_ENDPOINT: "",
      TSWORKFLOW_TTL_DAYS: "7",
    });
    expect(config.endpoints).toEqual({ dynamodb: "http://127.0.0.1:8000", sqs: "http://127.0.0.1:4566" });
    expect(config.ttlDays).toBe(7);
  });

  it("names a missing variable in one clear error", () => {
    const { TSWORKFLOW_SCHEDULE_GROUP: _missing, ...env } = valid;
    const error = errorOf(() => loadConfig(env));
    expect(error.code).toBe("CONFIGURATION");
    expect(error.message).toContain("TSWORKFLOW_SCHEDULE_GROUP is required (it is not set)");
    expect(error.message).not.toContain("TSWORKFLOW_TABLE_NAME");
  });

  it("names each wrong value and says what it must be", () => {
    const error = errorOf(() =>
      loadConfig({
        ...valid,
        TSWORKFLOW_WORKFLOW_QUEUE_URL: valid.TSWORKFLOW_STEP_QUEUE_URL,
        TSWORKFLOW_STEP_QUEUE_ARN: "tsworkflow-step",
        AWS_REGION: "Ireland",
        TSWORKFLOW_SQS_ENDPOINT: "localhost:4566",
      }),
    );
    expect(error.message).toContain("TSWORKFLOW_WORKFLOW_QUEUE_URL must be the URL of a FIFO queue");
    expect(error.message).toContain(
      'TSWORKFLOW_STEP_QUEUE_ARN must be arn:aws:sqs:<region>:<12-digit account>:<queue name> (it is "tsworkflow-step")',
    );
    expect(error.message).toContain('AWS_REGION must be an AWS region such as us-east-1 (it is "Ireland")');
    expect(error.message).toContain("TSWORKFLOW_SQS_ENDPOINT must be an http(s) URL");
  });

  it("says an ARN's account is 12 digits, since a short one looks right at a glance", () => {
    const error = errorOf(() =>
      loadConfig({
        ...valid,
        TSWORKFLOW_STEP_QUEUE_ARN: "arn:aws:sqs:us-east-1:1:q",
        TSWORKFLOW_SCHEDULER_ROLE_ARN: "arn:aws:iam::1234:role/scheduler",
      }),
    );
    expect(error.message).toContain(
      'TSWORKFLOW_STEP_QUEUE_ARN must be arn:aws:sqs:<region>:<12-digit account>:<queue name> (it is "arn:aws:sqs:us-east-1:1:q")',
    );
    expect(error.message).toContain(
      'TSWORKFLOW_SCHEDULER_ROLE_ARN must be arn:aws:iam::<12-digit account>:role/<role name> (it is "arn:aws:iam::1234:role/scheduler")',
    );
  });

  it("round-trips through the environment the construct writes", () => {
    const config = loadConfig({ ...valid, TSWORKFLOW_DYNAMODB_ENDPOINT: "http://127.0.0.1:8000" });
    expect(loadConfig(configToEnvironment(config))).toEqual(config);
  });
});

describe("loadClientConfig", () => {
  it("needs only the table, the workflow queue and the region", () => {
    const config = loadClientConfig({
      TSWORKFLOW_TABLE_NAME: valid.TSWORKFLOW_TABLE_NAME,
      TSWORKFLOW_WORKFLOW_QUEUE_URL: valid.TSWORKFLOW_WORKFLOW_QUEUE_URL,
      AWS_REGION: valid.AWS_REGION,
    });
    expect(config).toMatchObject({ tableName: "tsworkflow-runs", region: "eu-west-1", endpoints: {} });
    expect(errorOf(() => loadClientConfig({ AWS_REGION: "eu-west-1" })).message).toContain(
      "TSWORKFLOW_TABLE_NAME is required",
    );
  });

  it("reads the schedule group and the scheduler endpoint when set, for the schedule methods", () => {
    const base = {
      TSWORKFLOW_TABLE_NAME: valid.TSWORKFLOW_TABLE_NAME,
      TSWORKFLOW_WORKFLOW_QUEUE_URL: valid.TSWORKFLOW_WORKFLOW_QUEUE_URL,
      AWS_REGION: valid.AWS_REGION,
    };
    expect(loadClientConfig(base).scheduleGroup).toBeUndefined();
    const config = loadClientConfig({
      ...base,
      TSWORKFLOW_SCHEDULE_GROUP: "kit-schedules",
      TSWORKFLOW_SCHEDULER_ENDPOINT: "http://127.0.0.1:9000",
    });
    expect(config).toMatchObject({
      scheduleGroup: "kit-schedules",
      endpoints: { scheduler: "http://127.0.0.1:9000" },
    });
    expect(
      errorOf(() => loadClientConfig({ ...base, TSWORKFLOW_SCHEDULE_GROUP: "no spaces" })).message,
    ).toContain("TSWORKFLOW_SCHEDULE_GROUP must be a schedule group name");
  });
});
