import { VersionConflictError } from "../../core/errors.ts";
import type { CreateRunResult, NewRun, RunRecord } from "../../ports/event-store.ts";
import { commitItems, type Item, transactionToken } from "./commit-items.ts";
import { putCommit } from "./commit-write.ts";
import { readRun } from "./document-sync.ts";
import { conditionFailed } from "./dynamodb-errors.ts";
import { PutCommand, TransactionCanceledException, TransactWriteCommand } from "./dynamodb-sdk.ts";
import { freeKey, holderOf, keyItem } from "./idempotency-keys.ts";
import { assertItemFits } from "./item-size.ts";
import { pause } from "./queries.ts";
import { newRunDocument, tagItems } from "./run-document.ts";
import type { RunFacts } from "./run-facts.ts";
import type { StoreContext } from "./store-context.ts";

const MAX_CREATE_ATTEMPTS = 30;

/**
 * Creates a run in one transaction: its idempotency key (when it has one), its document, its first commit
 * and its tag items, each `attribute_not_exists(pk)`. A key already taken creates nothing and returns the
 * run that holds it. A run with no key and no tags, whose first commit is one item, is two puts instead
 * (4 WRU against the transaction's 8): its first commit, then its document.
 */
export async function createRunItems(
  context: StoreContext,
  facts: RunFacts,
  { run, startedEvent }: NewRun,
): Promise<CreateRunResult> {
  // The engine built the event: it is checked when read back, not here.
  const event = startedEvent;
  const parent = event.type === "workflow_started" ? event.parent : undefined;
  const commit = await commitItems(context, run.runId, 1, [event], {
    status: run.status,
    updatedAt: run.updatedAt,
  });
  const offloaded = commit.some((item) => item.refs !== undefined || item.body !== undefined);
  const key = run.idempotencyKey;
  const puts: Item[] = [
    ...(key === undefined ? [] : [keyItem(key, run.runId, run.createdAt)]),
    newRunDocument(run, parent?.runId),
    ...commit,
    ...tagItems(run.runId, run.createdAt, run.tags),
  ];
  for (const item of puts) assertItemFits(item, `The start of run ${run.runId}`);
  if (puts.length === 2) {
    // Nobody else knows a new run's id before this returns, so nothing reads it between the two puts; a
    // crash between them leaves a commit item that no document names and nothing reads (docs/aws.md).
    // Each put that meets an item is an SDK retry of its own write: `putCommit` checks that it is.
    await putCommit(context, run.runId, 0, commit);
    await context.documents
      .send(
        new PutCommand({
          TableName: context.tableName,
          Item: puts[0],
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      )
      .catch((error: unknown) => {
        if (!conditionFailed(error)) throw error;
      });
    return created(facts, run, parent);
  }
  const transactItems = puts.map((item) => ({
    Put: { TableName: context.tableName, Item: item, ConditionExpression: "attribute_not_exists(pk)" },
  }));

  for (let attempt = 1; ; attempt += 1) {
    try {
      // The token makes an SDK retry after a lost reply succeed instead of failing on its own writes. It
      // names the creation time: another start of this run id (a child started again by a redelivered
      // activation) is another transaction, which DynamoDB cancels rather than refusing the token.
      await context.documents.send(
        new TransactWriteCommand({
          TransactItems: transactItems,
          ClientRequestToken: transactionToken("create", run.runId, run.createdAt, attempt),
        }),
      );
      return created(facts, run, parent);
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = (error.CancellationReasons ?? []).map((reason) => reason.Code ?? "None");
      const keyTaken = key !== undefined && reasons[0] === "ConditionalCheckFailed";
      const runTaken = reasons.slice(key === undefined ? 0 : 1).includes("ConditionalCheckFailed");
      if (runTaken && !keyTaken) throw new VersionConflictError(run.runId, 0);
      if (key !== undefined) {
        const existing = await runHoldingKey(context, facts, key);
        if (existing) {
          // This start lost to an earlier one: the payloads it put for its own run id are nobody's.
          if (offloaded && context.payloads?.bucket)
            await context.payloads.deleteRun(context.payloads.bucket, run.runId).catch(() => 0);
          return { created: false, run: existing };
        }
      }
      // Lost a race to a transaction that was itself cancelled, or the key's run expired: try again.
      if (attempt >= MAX_CREATE_ATTEMPTS) throw error;
      await pause(Math.min(200, 5 * attempt) + Math.random() * 20 * attempt);
    }
  }
}

function created(facts: RunFacts, run: RunRecord, parent: unknown): CreateRunResult {
  facts.learn(run.runId, { boundary: 1, documentVersion: 1, child: parent !== undefined });
  return { created: true, run: structuredClone(run) };
}

/** The run that holds an idempotency key, or undefined (and the key freed) when that run expired. */
async function runHoldingKey(
  context: StoreContext,
  facts: RunFacts,
  key: string,
): Promise<RunRecord | undefined> {
  const holder = await holderOf(context, key);
  if (holder === undefined) return undefined;
  const run = await readRun(context, facts, holder);
  if (!run) await freeKey(context, key, holder);
  return run;
}
