import { PayloadTooLargeError } from "../../core/errors.ts";
import type { StepOutcome } from "../../ports/event-store.ts";
import type { Item } from "./commit-items.ts";
import { itemSize } from "./item-size.ts";
import { outcomeSk, runPk } from "./keys.ts";
import { DYNAMODB_ITEM_LIMIT_BYTES, OUTCOME_LIMIT_BYTES } from "./limits.ts";
import { packFields, refsOf, unpackFields } from "./payload-fields.ts";
import type { StoreContext } from "./store-context.ts";

/**
 * The item of one step outcome (`sk = OUT#<stepId>#<attempt>`), its result or error in S3 when large.
 * No TTL: an outcome may wait for months (an event sent before the run waits for it); the run's items
 * go when the run expires (see the reaper).
 */
export async function outcomeItem(context: StoreContext, outcome: StepOutcome): Promise<Item> {
  const { json, refs } = await packFields(outcome.runId, [outcome], context.payloads);
  const item: Item = {
    pk: runPk(outcome.runId),
    sk: outcomeSk(outcome.stepId, outcome.attempt, outcome.issueSeq),
    outcome: json.slice(1, -1),
    ...(refs.length > 0 ? { refs: JSON.stringify(refs) } : {}),
    recordedAt: outcome.recordedAt,
  };
  if (itemSize(item) <= Math.min(OUTCOME_LIMIT_BYTES, DYNAMODB_ITEM_LIMIT_BYTES)) return item;
  // Only without S3 (payloads are capped below this then): the attempt fails, and is not retried.
  const failed = oversizedOutcome(outcome, itemSize(item));
  return { ...item, outcome: JSON.stringify(failed), refs: undefined };
}

/** The outcome an item holds, with its payloads read back. */
export async function outcomeOf(context: StoreContext, item: Item): Promise<StepOutcome> {
  const outcome = JSON.parse(item.outcome as string) as Record<string, unknown>;
  const records = [outcome];
  await unpackFields(outcome.runId as string, records, refsOf(item.refs), context.reader);
  return outcome as unknown as StepOutcome;
}

/** A step result too large to store becomes a failure the engine does not retry. */
function oversizedOutcome(outcome: StepOutcome, bytes: number): StepOutcome {
  const error = new PayloadTooLargeError(
    `The ${outcome.ok ? "result" : "error"} of step ${outcome.stepId} (attempt ${outcome.attempt})`,
    bytes,
    OUTCOME_LIMIT_BYTES,
  );
  return {
    runId: outcome.runId,
    stepId: outcome.stepId,
    attempt: outcome.attempt,
    recordedAt: outcome.recordedAt,
    ok: false,
    error: { name: error.name, message: error.message, code: error.code },
  };
}
