import { createHash } from "node:crypto";
import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { PayloadTooLargeError } from "../../core/errors.ts";
import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import type { RunStatus } from "../../ports/event-store.ts";
import { assertItemFits, itemSize } from "./item-size.ts";
import { commitSk, partSk, runPk } from "./keys.ts";
import { byteLength, COMMIT_LIMIT_BYTES, COMMIT_PART_BYTES, TRANSACTION_MAX_ITEMS } from "./limits.ts";
import { type FieldRef, packFields, refsOf, unpackFields } from "./payload-fields.ts";
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
 * references) are then one item when they fit, else (with S3) one item pointing to an S3 body, else
 * (without S3) a head and parts written in one transaction, up to about 4 MB. No item repeats a
 * payload: the run document's result and error are read from here.
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
  const head: Item = { ...base, events: json, ...(refs.length > 0 ? { refs: JSON.stringify(refs) } : {}) };
  if (itemSize(head) <= HEAD_BUDGET_BYTES) return [head];
  const what = `A commit of ${events.length} events to run ${runId}`;
  if (context.payloads?.offloads) {
    const body = await context.payloads.put(runId, `{"refs":${JSON.stringify(refs)},"events":${json}}`);
    const item = { ...base, body: JSON.stringify(body) };
    assertItemFits(item, what);
    return [item];
  }
  const bytes = byteLength(json);
  if (bytes > COMMIT_LIMIT_BYTES) throw new PayloadTooLargeError(what, bytes, COMMIT_LIMIT_BYTES);
  const chunks = splitUtf8(json, COMMIT_PART_BYTES);
  if (chunks.length > TRANSACTION_MAX_ITEMS)
    throw new PayloadTooLargeError(what, bytes, COMMIT_PART_BYTES * TRANSACTION_MAX_ITEMS);
  const items = chunks.map((chunk, index) =>
    index === 0
      ? { ...base, events: chunk, parts: chunks.length }
      : { pk: runPk(runId), sk: partSk(firstSeq, index), part: index, events: chunk },
  );
  for (const item of items) assertItemFits(item, what);
  return items;
}

/** A commit as read back: its head item and its events. */
export interface StoredCommit {
  head: Item;
  events: WorkflowEvent[];
}

/** Rebuilds the commits of a run from its commit items, in order (payloads read back from S3). */
export async function readCommits(
  context: StoreContext,
  runId: string,
  items: readonly Item[],
): Promise<StoredCommit[]> {
  const grouped: { head: Item; json: string }[] = [];
  for (const item of items) {
    if (item.part === undefined)
      grouped.push({ head: item, json: (item.events as string | undefined) ?? "" });
    else {
      const last = grouped[grouped.length - 1];
      if (last) last.json += item.events as string;
    }
  }
  const commits: StoredCommit[] = [];
  let seq = 0;
  for (const { head, json } of grouped) {
    const records = await recordsOf(context, runId, head, json);
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
  const { Item: head } = await context.documents.send(
    new GetCommand({ TableName: context.tableName, Key: { pk: runPk(runId), sk }, ConsistentRead: true }),
  );
  if (!head) return undefined;
  let json = (head.events as string | undefined) ?? "";
  if (typeof head.parts === "number" && head.parts > 1) {
    const { Items: parts = [] } = await context.documents.send(
      new QueryCommand({
        TableName: context.tableName,
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues: { ":pk": runPk(runId), ":prefix": `${sk}#P` },
        ConsistentRead: true,
      }),
    );
    for (const part of parts) json += part.events as string;
  }
  const records = await recordsOf(context, runId, head, json, (record) => record.type === type);
  const found = records.find((record) => record.type === type);
  return found
    ? (parseEvent(found, `run ${runId} (commit ${sk})`) as Extract<WorkflowEvent, { type: T }>)
    : undefined;
}

/** The raw events of a commit with their offloaded payloads back in place (those `wanted`). */
async function recordsOf(
  context: StoreContext,
  runId: string,
  head: Item,
  json: string,
  wanted: (record: Record<string, unknown>) => boolean = () => true,
): Promise<Record<string, unknown>[]> {
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
    records = JSON.parse(json) as Record<string, unknown>[];
  }
  await unpackFields(runId, records, refs, context.reader, (index) => {
    const record = records[index];
    return record !== undefined && wanted(record);
  });
  return records;
}

/** The token of a transaction, the same for an SDK retry of it (so a retry after a lost reply succeeds). */
export function transactionToken(...parts: (string | number)[]): string {
  return createHash("sha256").update(parts.join("\n")).digest("hex").slice(0, 36);
}

/** Splits a string into pieces of at most `maxBytes` UTF-8 bytes without cutting a character. */
function splitUtf8(text: string, maxBytes: number): string[] {
  if (byteLength(text) <= maxBytes) return [text];
  const pieces: string[] = [];
  let start = 0;
  while (start < text.length) {
    // Each UTF-16 unit is at most 3 UTF-8 bytes; a surrogate pair (2 units) is 4.
    let end = Math.min(text.length, start + Math.floor(maxBytes / 3));
    while (end < text.length && byteLength(text.slice(start, end + 1024)) <= maxBytes)
      end = Math.min(text.length, end + 1024);
    const code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xd800 && code <= 0xdbff) end -= 1;
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}
