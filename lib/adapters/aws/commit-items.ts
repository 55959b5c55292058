import { PayloadTooLargeError } from "../../core/errors.ts";
import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { sha256 } from "../../core/hash.ts";
import type { RunStatus } from "../../ports/event-store.ts";
import { packEvents, unpackEvents } from "./event-codec.ts";
import { assertItemFits, itemSize } from "./item-size.ts";
import { commitSk, partSk, runPk } from "./keys.ts";
import { COMMIT_LIMIT_BYTES, COMMIT_PART_BYTES } from "./limits.ts";
import { type FieldRef, packFields, refsOf, unpackFields } from "./payload-fields.ts";
import { queryAll } from "./queries.ts";
import type { PayloadRef } from "./s3-payloads.ts";
import type { StoreContext } from "./store-context.ts";

export type Item = Record<string, unknown>;

/** What a commit changes in the run document; kept on the commit item to repair a lagging document. */
export interface CommitMeta {
  status: RunStatus;
  updatedAt: string;
}

/** Room left in a commit item for its keys and small attributes. */
const HEAD_BUDGET_BYTES = COMMIT_PART_BYTES;

/**
 * The items of one commit. Payloads over the offload threshold go to S3 first; the events (with
 * references) are then compressed (`z`, see `packEvents`) into one item when they fit, else (with S3)
 * one item pointing to an S3 body, else (without S3) a head and parts that split the compressed bytes,
 * written in one transaction, up to about 4 MB compressed. No item repeats a payload: the run document's
 * result and error are read from here.
 * @throws PayloadTooLargeError only without S3, for a commit over the transaction limit
 */
export async function commitItems(
  context: StoreContext,
  runId: string,
  firstSeq: number,
  events: readonly WorkflowEvent[],
  meta: CommitMeta,
): Promise<Item[]> {
  const { json, refs } = await packFields(runId, events, context.payloads);
  const end = firstSeq + events.length - 1;
  const base = {
    pk: runPk(runId),
    sk: commitSk(firstSeq),
    end,
    status: meta.status,
    updatedAt: meta.updatedAt,
  };
  const packed = packEvents(runId, json);
  const head: Item = { ...base, z: packed, ...(refs.length > 0 ? { refs: JSON.stringify(refs) } : {}) };
  if (itemSize(head) <= HEAD_BUDGET_BYTES) return [head];
  const what = `A commit of ${events.length} events to run ${runId}`;
  if (context.payloads?.offloads) {
    const body = await context.payloads.put(runId, `{"refs":${JSON.stringify(refs)},"events":${json}}`);
    const item = { ...base, body: JSON.stringify(body) };
    assertItemFits(item, what);
    return [item];
  }
  const bytes = packed.byteLength;
  if (bytes > COMMIT_LIMIT_BYTES)
    throw new PayloadTooLargeError(
      what,
      bytes,
      COMMIT_LIMIT_BYTES,
      "Set TSWORKFLOW_PAYLOAD_BUCKET (DurableWorkflows sets it).",
    );
  // At most 12 parts (COMMIT_LIMIT_BYTES / COMMIT_PART_BYTES): well within a transaction's 100 items.
  const parts = Math.ceil(bytes / COMMIT_PART_BYTES);
  const items = Array.from({ length: parts }, (_, index): Item => {
    const z = packed.subarray(index * COMMIT_PART_BYTES, (index + 1) * COMMIT_PART_BYTES);
    // Parts carry `end` too: `isBoundary`'s query back from a version finds the last part first.
    return index === 0
      ? { ...base, z, parts }
      : { pk: runPk(runId), sk: partSk(firstSeq, index), part: index, end, z };
  });
  for (const item of items) assertItemFits(item, what);
  return items;
}

/**
 * The JSON of a commit's events from its head and part items, in order: their compressed bytes (`z`), or
 * the text of a commit written before compression (`events`).
 */
function jsonOf(runId: string, items: readonly Item[]): string {
  if (items[0]?.z === undefined)
    return items.map((item) => (item.events as string | undefined) ?? "").join("");
  return unpackEvents(runId, Buffer.concat(items.map((item) => item.z as Uint8Array)));
}

/** A commit as read back: its head item and its events. */
export interface StoredCommit {
  head: Item;
  events: WorkflowEvent[];
}

/**
 * Rebuilds the commits of a run from its commit items, in order (payloads read back from S3); `before`
 * events come before the first of them.
 */
export async function readCommits(
  context: StoreContext,
  runId: string,
  items: readonly Item[],
  before = 0,
): Promise<StoredCommit[]> {
  const grouped: Item[][] = [];
  for (const item of items) {
    if (item.part === undefined) grouped.push([item]);
    else grouped[grouped.length - 1]?.push(item);
  }
  const commits: StoredCommit[] = [];
  let seq = before;
  for (const group of grouped) {
    const head = group[0] as Item;
    const records = await recordsOf(context, runId, group);
    const events = records.map((value, index) => {
      seq += 1;
      return parseEvent(value, `run ${runId} (event ${seq}, commit ${head.sk}#${index})`);
    });
    commits.push({ head, events });
  }
  return commits;
}

/**
 * One event of one commit (the run document's pointer to a large input, result or error), reading only
 * that event's payloads from S3.
 */
export async function readCommitEvent<T extends WorkflowEvent["type"]>(
  context: StoreContext,
  runId: string,
  sk: string,
  type: T,
): Promise<Extract<WorkflowEvent, { type: T }> | undefined> {
  // The head and its parts: commit keys have a fixed width, so no other commit begins with `sk`.
  const items = await queryAll(context, {
    KeyConditionExpression: "pk = :pk AND begins_with(sk, :sk)",
    ExpressionAttributeValues: { ":pk": runPk(runId), ":sk": sk },
    ConsistentRead: true,
  });
  if (items.length === 0) return undefined;
  const records = await recordsOf(context, runId, items, (record) => record.type === type);
  const found = records.find((record) => record.type === type);
  return found
    ? (parseEvent(found, `run ${runId} (commit ${sk})`) as Extract<WorkflowEvent, { type: T }>)
    : undefined;
}

/** The raw events of a commit (its head item, then its parts) with their offloaded payloads back in place (those `wanted`). */
async function recordsOf(
  context: StoreContext,
  runId: string,
  items: readonly Item[],
  wanted: (record: Record<string, unknown>) => boolean = () => true,
): Promise<Record<string, unknown>[]> {
  const head = items[0] as Item;
  let refs: FieldRef[];
  let records: Record<string, unknown>[];
  if (typeof head.body === "string") {
    const body = JSON.parse(await context.reader().get(runId, JSON.parse(head.body) as PayloadRef)) as {
      refs: FieldRef[];
      events: Record<string, unknown>[];
    };
    refs = body.refs;
    records = body.events;
  } else {
    refs = refsOf(head.refs);
    records = JSON.parse(jsonOf(runId, items)) as Record<string, unknown>[];
  }
  await unpackFields(runId, records, refs, context.reader, (index) => {
    const record = records[index];
    return record !== undefined && wanted(record);
  });
  return records;
}

/** The token of a transaction, the same for an SDK retry of it (so a retry after a lost reply succeeds). */
export function transactionToken(...parts: (string | number)[]): string {
  return sha256(parts.join("\n")).slice(0, 36);
}
