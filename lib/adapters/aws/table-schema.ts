import type { CreateTableCommandInput, DynamoDBClient } from "@aws-sdk/client-dynamodb";

/**
 * The single-table layout of the DynamoDB event store. The CDK construct (infra/) and the tests
 * create the table from these constants, so the three can never disagree.
 *
 * | item | pk | sk | notes |
 * |---|---|---|---|
 * | run document | `RUN#<runId>` | `RUN` | status, workflow, small input/result/error (or the commit holding them), `version`; index keys; `ttl` once finished |
 * | commit | `RUN#<runId>` | `COMMIT#<first seq, 10 digits>` | the events of one commit (`z`, compressed; `events`, JSON text, from earlier versions), `refs` to S3 payloads or a `body` in S3, `end` = last seq, `status` |
 * | commit part | `RUN#<runId>` | `COMMIT#<first seq>#P<nn>` | without S3: the rest of a commit's bytes over the item limit, written in the same transaction |
 * | log segment | `RUN#<runId>` | `SEG#<k, 6 digits>` | events `(k - 1) * 100 + 1` to the end of the commit that took the log past `k * 100`, in one compressed stream (`z`; see `log-segment.ts`) |
 * | step outcome | `RUN#<runId>` | `OUT#<stepId>#<attempt, 6 digits>` | result or serialized error of one attempt (`refs` when in S3) |
 * | idempotency key | `IDEM#<key>` | `IDEM` | `runId` of the run that holds the key |
 * | schedule state | `SCHEDULES` | `SCHEDULE#<name>` | `paused`, `lastTick` (its creation), `lastFiredTick`, `lastRunId`, `bufferedTick`, workflow, args, request fingerprint (see `awsSchedules`) |
 * | declared schedules | `SCHEDULES` | `DECLARED` | `hash` of the declarations the last reconcile applied |
 *
 * Listing: `gsi1` (`gsi1pk = STATUS#<status>#<shard>`, `running` for a pending run) and `gsi2` (`gsi2pk = WF#<workflowName>#<shard>`),
 * both sorted by `gsiSk = <createdAt>#<runId>`, 16 shards per status or workflow (a hash of the run
 * id) so that writes spread. The sweeper's `gsi3` (`duePk = DUE#<shard>`, `dueSk = <due time>#<runId>`)
 * holds only runs it must look at some time (a sleep's wake-up, a finished child's parent). All three
 * project keys only, so that a commit that does not change the status writes no index item.
 */
export const TABLE_SCHEMA = {
  partitionKey: "pk",
  sortKey: "sk",
  /** Epoch seconds; DynamoDB deletes the item some time after this. */
  ttlAttribute: "ttl",
  byStatusIndex: { name: "gsi1", partitionKey: "gsi1pk", sortKey: "gsiSk" },
  byWorkflowIndex: { name: "gsi2", partitionKey: "gsi2pk", sortKey: "gsiSk" },
  byDueIndex: { name: "gsi3", partitionKey: "duePk", sortKey: "dueSk" },
  /** Billing: on demand (pay per request), as the cost model in docs/aws.md assumes. */
  billingMode: "PAY_PER_REQUEST",
} as const;

/** The `CreateTable` input for a table named `tableName` (on-demand, three key-only GSIs). */
export function createTableInput(tableName: string): CreateTableCommandInput {
  const { partitionKey, sortKey, byStatusIndex, byWorkflowIndex, byDueIndex } = TABLE_SCHEMA;
  return {
    TableName: tableName,
    BillingMode: TABLE_SCHEMA.billingMode,
    AttributeDefinitions: [
      { AttributeName: partitionKey, AttributeType: "S" },
      { AttributeName: sortKey, AttributeType: "S" },
      { AttributeName: byStatusIndex.partitionKey, AttributeType: "S" },
      { AttributeName: byWorkflowIndex.partitionKey, AttributeType: "S" },
      { AttributeName: byStatusIndex.sortKey, AttributeType: "S" },
      { AttributeName: byDueIndex.partitionKey, AttributeType: "S" },
      { AttributeName: byDueIndex.sortKey, AttributeType: "S" },
    ],
    KeySchema: [
      { AttributeName: partitionKey, KeyType: "HASH" },
      { AttributeName: sortKey, KeyType: "RANGE" },
    ],
    GlobalSecondaryIndexes: [byStatusIndex, byWorkflowIndex, byDueIndex].map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: "HASH" as const },
        { AttributeName: index.sortKey, KeyType: "RANGE" as const },
      ],
      Projection: { ProjectionType: "KEYS_ONLY" as const },
    })),
  };
}

/**
 * Creates the table (and turns TTL on) unless it exists. For tests, scripts and LocalStack; in AWS
 * the CDK construct creates it.
 * @example
 * import { createTable } from "tsworkflow/aws";
 * await createTable(new DynamoDBClient({}), "tsworkflow");
 */
export async function createTable(client: DynamoDBClient, tableName: string): Promise<void> {
  // Imported here: the CDK construct reads TABLE_SCHEMA from this module, and a CDK app need not have the SDK.
  const { CreateTableCommand, ResourceInUseException, UpdateTimeToLiveCommand } = await import(
    "@aws-sdk/client-dynamodb"
  );
  try {
    await client.send(new CreateTableCommand(createTableInput(tableName)));
  } catch (error) {
    if (error instanceof ResourceInUseException) return;
    throw error;
  }
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: TABLE_SCHEMA.ttlAttribute, Enabled: true },
    }),
  );
}
