import { VersionConflictError } from "../../core/errors.ts";
import type { CreateRunResult, NewRun, RunRecord } from "../../ports/event-store.ts";
import { commitItems, type Item, transactionToken } from "./commit-items.ts";
import { readRun } from "./document-sync.ts";
import { TransactionCanceledException, TransactWriteCommand } from "./dynamodb-sdk.ts";
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
 * run that holds it.
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
  const transactItems = puts.map((item) => ({
    Put: { TableName: context.tableName, Item: item, ConditionExpression: "attribute_not_exists(pk)" },
  }));

  for (let attempt = 1; ; attempt += 1) {
    try {
      // The token makes an SDK retry after a lost reply succeed instead of failing on its own writes.
      await context.documents.send(
        new TransactWriteCommand({
          TransactItems: transactItems,
          ClientRequestToken: transactionToken("create", run.runId, attempt),
        }),
      );
      facts.learn(run.runId, { boundary: 1, documentVersion: 1, child: parent !== undefined });
      return { created: true, run: structuredClone(run) };
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
