import { dynamoDBStoreFor } from "../adapters/aws/dynamodb-engine-store.ts";
import type { S3Payloads } from "../adapters/aws/s3-payloads.ts";
import { getLogger } from "../core/logger.ts";
import type { EventStore } from "../ports/event-store.ts";
import type { DynamoDbStreamRecord } from "./lambda/lambda-types.ts";

/**
 * The run a DynamoDB stream record says DynamoDB's TTL deleted (a finished run's document, `retention`
 * after the run finished), or undefined for any other record (the construct's event filter passes only
 * these; the check is repeated here).
 */
export function expiredRunOf(
  record: DynamoDbStreamRecord,
): { runId: string; idempotencyKey?: string } | undefined {
  const old = record.dynamodb?.OldImage;
  const byTtl =
    record.eventName === "REMOVE" &&
    record.userIdentity?.type === "Service" &&
    record.userIdentity?.principalId === "dynamodb.amazonaws.com";
  if (!byTtl || old?.sk?.S !== "RUN" || old.runId?.S === undefined) return undefined;
  return { runId: old.runId.S, ...(old.idempotencyKey?.S ? { idempotencyKey: old.idempotencyKey.S } : {}) };
}

/**
 * Removes the rest of an expired run: its commits, outcomes and idempotency key in the table, and its
 * payloads in the bucket. So every item of a run lives until `retention` after the run finished, and
 * nothing a live run needs ever carries a TTL (a sleeping run, an event sent before the run waits for
 * it). Idempotent: a repeated record finds nothing left.
 * @example
 * import { reapExpiredRuns } from "tsworkflow/aws";
 * export const handler = (event) => reapExpiredRuns(runtime, event.Records);
 */
export async function reapExpiredRuns(
  runtime: { store: EventStore; payloads: S3Payloads; config: { payloadBucket?: string } },
  records: readonly DynamoDbStreamRecord[],
): Promise<string[]> {
  const store = dynamoDBStoreFor("The reaper deletes DynamoDB items", runtime.store);
  const reaped: string[] = [];
  for (const record of records) {
    const expired = expiredRunOf(record);
    if (!expired) continue;
    const items = await store.purgeRun(expired.runId, expired.idempotencyKey);
    const bucket = runtime.config.payloadBucket;
    const objects = bucket ? await runtime.payloads.deleteRun(bucket, expired.runId) : 0;
    getLogger().debug("reaped an expired run", { runId: expired.runId, items, objects });
    reaped.push(expired.runId);
  }
  return reaped;
}
