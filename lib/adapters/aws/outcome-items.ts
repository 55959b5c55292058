import type { StepOutcome } from "../../ports/event-store.ts";
import { isFromOutside } from "../../ports/inbox.ts";
import type { Item } from "./commit-items.ts";
import { conditionFailed } from "./dynamodb-errors.ts";
import { PutCommand } from "./dynamodb-sdk.ts";
import { assertItemFits } from "./item-size.ts";
import {
  dueKey,
  dueSortKey,
  OUTCOME_END,
  OUTCOME_PREFIX,
  outcomeFrom,
  outcomeSk,
  runPk,
  shardOf,
} from "./keys.ts";
import { packFields, refsOf, unpackFields } from "./payload-fields.ts";
import { clearDue, getItem, queryAll } from "./queries.ts";
import type { StoreContext } from "./store-context.ts";

/*
 * Step outcomes: one item each (`sk = OUT#<stepId>#<attempt>`, or keyed by the attempt's issue seq), its
 * result or error in S3 when large. No TTL: an outcome may wait for months (an event sent before the run
 * waits for it); the run's items go when the run expires (see the reaper). Their size is the engine's
 * rule (lib/engine/payload-rules.ts): the store only checks that the item fits.
 */

/**
 * Stores an outcome once (`attribute_not_exists(sk)`): false when the attempt's outcome was already there.
 * @throws PayloadTooLargeError for an item over DynamoDB's limit (the engine's payload limit keeps them below)
 */
export async function putOutcomeItem(context: StoreContext, outcome: StepOutcome): Promise<boolean> {
  const { runId, stepId, recordedAt } = outcome;
  const { json, refs } = await packFields(runId, [outcome], context.payloads);
  const item: Item = {
    pk: runPk(runId),
    sk: outcomeSk(stepId, outcome.attempt, outcome.issueSeq),
    outcome: json.slice(1, -1),
    ...(refs.length > 0 ? { refs: JSON.stringify(refs) } : {}),
    recordedAt,
    // An event, a cancellation or a child's result is in the sweeper's due index until an activation lists
    // it (see `listOutcomeItems`): should the activation sent after it be lost, the sweeper wakes the run.
    ...(isFromOutside(stepId) && {
      duePk: dueKey(shardOf(runId)),
      dueSk: dueSortKey(Date.parse(recordedAt), runId),
    }),
  };
  assertItemFits(item, `The outcome of step ${outcome.stepId} (attempt ${outcome.attempt})`);
  try {
    await context.documents.send(
      new PutCommand({
        TableName: context.tableName,
        Item: item,
        ConditionExpression: "attribute_not_exists(sk)",
      }),
    );
    return true;
  } catch (error) {
    if (conditionFailed(error)) return false;
    throw error;
  }
}

/** The outcome of one attempt, if stored. */
export async function getOutcomeItem(
  context: StoreContext,
  runId: string,
  stepId: string,
  attempt: number,
  issueSeq?: number,
): Promise<StepOutcome | undefined> {
  const item = await getItem(context, { pk: runPk(runId), sk: outcomeSk(stepId, attempt, issueSeq) });
  return item ? outcomeOf(context, item) : undefined;
}

/**
 * The run's outcomes in the order recorded. With `fromSeq`, the attempts issued before it are not read
 * (see `outcomeSk`): reads stay flat.
 */
export async function listOutcomeItems(
  context: StoreContext,
  runId: string,
  fromSeq?: number,
  consistent = true,
): Promise<StepOutcome[]> {
  const items = await queryAll(context, {
    KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
    ExpressionAttributeValues: {
      ":pk": runPk(runId),
      ":from": fromSeq === undefined ? OUTCOME_PREFIX : outcomeFrom(fromSeq),
      ":to": OUTCOME_END,
    },
    ConsistentRead: consistent,
  });
  // Listed by an activation: an outcome from outside leaves the sweeper's due index (see putOutcomeItem).
  for (const item of items) if (item.duePk) await clearDue(context, item);
  const outcomes = await Promise.all(items.map((item) => outcomeOf(context, item)));
  // Stable sort: equal timestamps keep the key order (step id, then attempt).
  return outcomes.sort((a, b) => (a.recordedAt === b.recordedAt ? 0 : a.recordedAt < b.recordedAt ? -1 : 1));
}

/** The outcome an item holds, with its payloads read back. */
async function outcomeOf(context: StoreContext, item: Item): Promise<StepOutcome> {
  const outcome = JSON.parse(item.outcome as string) as Record<string, unknown>;
  await unpackFields(outcome.runId as string, [outcome], refsOf(item.refs), context.reader);
  return outcome as unknown as StepOutcome;
}
