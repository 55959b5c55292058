import { PutCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { InvalidEventError, VersionConflictError } from "../../core/errors.ts";
import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { type Item, transactionToken } from "./commit-items.ts";
import { conditionFailed } from "./dynamodb-errors.ts";
import type { StoreContext } from "./store-context.ts";

/**
 * The events of a commit at `expectedVersion`, checked: each a valid event of this run, numbered on from
 * the version.
 * @throws InvalidEventError naming the first event at fault
 */
export function validCommit(
  runId: string,
  expectedVersion: number,
  events: WorkflowEvent[],
): WorkflowEvent[] {
  return events.map((event, index) => {
    const parsed = parseEvent(
      event,
      `run ${runId} (commit at version ${expectedVersion}, event ${index + 1})`,
    );
    if (parsed.seq !== expectedVersion + index + 1 || parsed.runId !== runId) {
      throw new InvalidEventError(
        `Event ${index + 1} of a commit to run ${runId} at version ${expectedVersion} is seq ${parsed.seq} of run ${parsed.runId}: a bug in the caller.`,
      );
    }
    return parsed;
  });
}

/**
 * Writes the items of a commit (see `commitItems`), each `attribute_not_exists(sk)`: one `PutItem`, or a
 * transaction for a commit split in parts.
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
  });
  try {
    if (items.length === 1) await context.documents.send(new PutCommand(put(items[0] as Item)));
    else
      await context.documents.send(
        new TransactWriteCommand({
          TransactItems: items.map((item) => ({ Put: put(item) })),
          ClientRequestToken: transactionToken("commit", runId, expectedVersion, items[0]?.events as string),
        }),
      );
  } catch (error) {
    if (conditionFailed(error)) throw new VersionConflictError(runId, expectedVersion);
    throw error;
  }
}
