import type { Item } from "./commit-items.ts";
import { DeleteCommand } from "./dynamodb-sdk.ts";
import { IDEM_SK, idemPk } from "./keys.ts";
import { getItem, unlessConditionFailed } from "./queries.ts";
import type { StoreContext } from "./store-context.ts";

/** The item that holds an idempotency key for a run (written with `attribute_not_exists(pk)`). */
export function keyItem(key: string, runId: string, createdAt: string): Item {
  return { pk: idemPk(key), sk: IDEM_SK, runId, createdAt };
}

/** The run id that holds `key`, if any. */
export async function holderOf(context: StoreContext, key: string): Promise<string | undefined> {
  return (await getItem(context, { pk: idemPk(key), sk: IDEM_SK }))?.runId as string | undefined;
}

/** Frees `key` if it still names `runId` (the run expired). */
export async function freeKey(context: StoreContext, key: string, runId: string): Promise<void> {
  await context.documents
    .send(
      new DeleteCommand({
        TableName: context.tableName,
        Key: { pk: idemPk(key), sk: IDEM_SK },
        ConditionExpression: "runId = :runId",
        ExpressionAttributeValues: { ":runId": runId },
      }),
    )
    .catch(unlessConditionFailed);
}
