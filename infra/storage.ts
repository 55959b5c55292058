import {
  Duration,
  aws_dynamodb as dynamodb,
  type RemovalPolicy,
  aws_s3 as s3,
  Validations,
} from "aws-cdk-lib";
import type { Construct } from "constructs";
import { TABLE_SCHEMA } from "../lib/adapters/aws/table-schema.ts";

/** The run table: the layout of `TABLE_SCHEMA`, on demand, PITR, TTL, a stream of old images for the reaper. */
export function createTable(
  scope: Construct,
  removalPolicy: RemovalPolicy,
  tableName?: string,
): dynamodb.Table {
  const table = new dynamodb.Table(scope, "Table", {
    ...(tableName === undefined ? {} : { tableName }),
    partitionKey: { name: TABLE_SCHEMA.partitionKey, type: dynamodb.AttributeType.STRING },
    sortKey: { name: TABLE_SCHEMA.sortKey, type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    timeToLiveAttribute: TABLE_SCHEMA.ttlAttribute,
    // The reaper needs the document TTL deleted (its old image names the run and its idempotency key).
    stream: dynamodb.StreamViewType.OLD_IMAGE,
    removalPolicy: removalPolicy,
  });
  for (const index of [TABLE_SCHEMA.byStatusIndex, TABLE_SCHEMA.byWorkflowIndex, TABLE_SCHEMA.byDueIndex]) {
    table.addGlobalSecondaryIndex({
      indexName: index.name,
      partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });
  }
  return table;
}

/** The payload bucket: SSE-S3, private, TLS only; its objects go with their run (the reaper). */
export function createPayloadBucket(scope: Construct, removalPolicy: RemovalPolicy): s3.Bucket {
  const bucket = new s3.Bucket(scope, "PayloadBucket", {
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy: removalPolicy,
    // Payloads leave with their run: the reaper deletes `runs/<runId>/` when the run's retention ends.
    // An S3 expiration counts from an object's creation and would delete the payloads of a run that
    // lives longer than the retention, so it only cleans what no run can refer to.
    lifecycleRules: [
      { id: "abort-incomplete-uploads", abortIncompleteMultipartUploadAfter: Duration.days(1) },
    ],
  });
  Validations.of(bucket).acknowledge({
    id: "AwsSolutions-S1",
    reason:
      "The payload bucket is written and read only by the kit's functions, whose requests CloudTrail records; access logs would repeat them at a cost.",
  });
  return bucket;
}
