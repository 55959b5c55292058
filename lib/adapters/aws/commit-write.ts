import { VersionConflictError } from "../../core/errors.ts";
import { type Item, transactionToken } from "./commit-items.ts";
import { conditionFailed } from "./dynamodb-errors.ts";
import { PutCommand, TransactWriteCommand } from "./dynamodb-sdk.ts";
import type { StoreContext } from "./store-context.ts";

/**
 * Writes the items of a commit (see `commitItems`), each `attribute_not_exists(sk)`: one `PutItem`, or a
 * transaction for a commit split in parts. An SDK retry of a `PutItem` whose reply was lost finds the item it
 * wrote (returned with the failed condition): that is a success, or no one would send the commit's steps.
 * @throws VersionConflictError when another writer committed at this version first
 */
export async function putCommit(
  context: StoreContext,
  runId: string,
  expectedVersion: number,
  items: Item[],
): Promise<void> {
  const put = (item: Item) => ({
    TableName: context.tableName,
    Item: item,
    ConditionExpression: "attribute_not_exists(sk)",
    ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const,
  });
  try {
    if (items.length === 1) await context.documents.send(new PutCommand(put(items[0] as Item)));
    else
      await context.documents.send(
        new TransactWriteCommand({
          TransactItems: items.map((item) => ({ Put: put(item) })),
          ClientRequestToken: transactionToken(
            "commit",
            runId,
            expectedVersion,
            ((items[0] as Item).z as Buffer).toString("base64"),
          ),
        }),
      );
  } catch (error) {
    const mine = items[0]?.z as Uint8Array | undefined;
    const found = (error as { Item?: { z?: { B?: Uint8Array } } }).Item?.z?.B;
    if (mine && found && Buffer.compare(mine, found) === 0) return;
    if (conditionFailed(error)) throw new VersionConflictError(runId, expectedVersion);
    throw error;
  }
}
