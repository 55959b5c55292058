/**
 * The optional backends' modules, imported when a command uses their backend, so the CLI runs on the file
 * backend without ioredis, BullMQ or the AWS SDK installed. Kept apart from backend.ts: the published
 * declarations of `tsworkflow/cli` then name none of those packages, and an app that type-checks its
 * dependencies (`skipLibCheck: false`) needs none of them installed.
 */
import { importOptional } from "../core/optional-dependency.ts";
import type { Backend } from "./backend.ts";

/**
 * The AWS SDK warns on every run under Node 20 that its releases after January 2027 need Node 22: that
 * says nothing about the command being run, so the CLI keeps it out of its output.
 */
function quietAwsSdk(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
}

/** A DynamoDB client for the CLI: short timeouts, and any key against a local endpoint. */
export async function dynamoDBClient(
  backend: Extract<Backend, { kind: "dynamodb" }>,
): Promise<import("@aws-sdk/client-dynamodb").DynamoDBClient> {
  const { DynamoDBClient } = await importOptional(
    () => import("@aws-sdk/client-dynamodb"),
    "DynamoDB mode",
    AWS_PACKAGES,
  );
  return new DynamoDBClient(clientSettings(backend.region, backend.endpoint));
}

/**
 * The settings of the CLI's S3 client (made when a payload in S3 is first read): the table's region, and
 * `--s3-endpoint` with path-style requests, as emulators and LocalStack serve buckets.
 */
export function s3ClientSettings(backend: Extract<Backend, { kind: "dynamodb" }>) {
  return {
    ...clientSettings(backend.region, backend.s3Endpoint),
    ...(backend.s3Endpoint ? { forcePathStyle: true } : {}),
  };
}

/** An AWS SDK client's settings in the CLI: short timeouts, and any key against a local endpoint. */
function clientSettings(region: string, endpoint: string | undefined) {
  const hasCredentials = Boolean(process.env.AWS_ACCESS_KEY_ID || process.env.AWS_PROFILE);
  return {
    region,
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 3000, requestTimeout: 10_000 },
    ...(endpoint ? { endpoint } : {}),
    // DynamoDB Local and LocalStack accept any key; without one the SDK would refuse to send.
    ...(endpoint && !hasCredentials
      ? { credentials: { accessKeyId: "local", secretAccessKey: "local" } }
      : {}),
  };
}

/** The peers of DynamoDB mode (the Lambda runtime has them; a machine running the CLI may not). */
const AWS_PACKAGES = [
  "@aws-sdk/client-dynamodb",
  "@aws-sdk/lib-dynamodb",
  "@aws-sdk/client-sqs",
  "@aws-sdk/client-scheduler",
];

/** The Redis entry (ioredis and BullMQ). */
export function loadRedisMode(): Promise<typeof import("../redis/index.ts")> {
  return importOptional(() => import("../redis/index.ts"), "Redis mode", ["ioredis", "bullmq"]);
}

/** The AWS entry (the AWS SDK's clients). */
export function loadAwsMode(): Promise<typeof import("../aws/index.ts")> {
  quietAwsSdk();
  return importOptional(() => import("../aws/index.ts"), "DynamoDB mode", AWS_PACKAGES);
}
