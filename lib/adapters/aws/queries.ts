import type { QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import type { Item } from "./commit-items.ts";
import { conditionFailed } from "./dynamodb-errors.ts";
import { BatchWriteCommand, GetCommand, QueryCommand, UpdateCommand } from "./dynamodb-sdk.ts";
import { RUN_SK, runPk } from "./keys.ts";
import type { StoreContext } from "./store-context.ts";

/** Every item a query matches, page after page. */
export async function queryAll(
  context: StoreContext,
  input: Omit<QueryCommandInput, "TableName">,
): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await context.documents.send(
      new QueryCommand({ ...input, TableName: context.tableName, ExclusiveStartKey: startKey }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** One item (or some of its attributes), read consistently. */
export async function getItem(
  context: StoreContext,
  key: { pk: string; sk: string },
  projection?: string,
): Promise<Item | undefined> {
  const { Item: item } = await context.documents.send(
    new GetCommand({
      TableName: context.tableName,
      Key: key,
      ConsistentRead: true,
      ...(projection ? { ProjectionExpression: projection } : {}),
    }),
  );
  return item;
}

/** The run document (or some of its attributes), read consistently. */
export const getDocument = (context: StoreContext, runId: string, projection?: string) =>
  getItem(context, { pk: runPk(runId), sk: RUN_SK }, projection);

/** Deletes items by key, 25 to a `BatchWriteItem`, retrying what DynamoDB left unprocessed. */
export async function deleteItems(context: StoreContext, keys: readonly Item[]): Promise<void> {
  for (let start = 0; start < keys.length; start += 25) {
    let requests = keys.slice(start, start + 25).map((key) => ({ DeleteRequest: { Key: key } }));
    for (let round = 0; requests.length > 0; round += 1) {
      const result = await context.documents.send(
        new BatchWriteCommand({ RequestItems: { [context.tableName]: requests } }),
      );
      requests = (result.UnprocessedItems?.[context.tableName] ?? []) as typeof requests;
      if (requests.length > 0) await pause(Math.min(1000, 20 * 2 ** round));
    }
  }
}

/** A conditional write whose condition did not hold is no error here (it was done, or is not to do). */
export function unlessConditionFailed(error: unknown): void {
  if (!conditionFailed(error)) throw error;
}

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Takes an item (a run document, an outcome from outside) out of the sweeper's due index. */
export async function clearDue(context: StoreContext, key: Item): Promise<void> {
  await context.documents
    .send(
      new UpdateCommand({
        TableName: context.tableName,
        Key: { pk: key.pk, sk: key.sk },
        UpdateExpression: "REMOVE duePk, dueSk",
        ConditionExpression: "attribute_exists(pk)",
      }),
    )
    .catch(unlessConditionFailed);
}
