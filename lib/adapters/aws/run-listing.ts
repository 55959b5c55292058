import { hasTags, tagKey } from "../../core/tags.ts";
import {
  RUN_STATUSES,
  type RunPage,
  type RunQuery,
  type RunRecord,
  type RunStatus,
} from "../../ports/event-store.ts";
import { decodeRunCursor, encodeRunCursor, pageLimit } from "../../ports/run-cursor.ts";
import type { Item } from "./commit-items.ts";
import { BatchGetCommand, QueryCommand } from "./dynamodb-sdk.ts";
import { dueKey, gsiSortKey, RUN_SK, shards, statusKey, tagIndexKey, workflowKey } from "./keys.ts";
import { pause } from "./queries.ts";
import { tagsOf, toRecord } from "./run-document.ts";
import type { StoreContext } from "./store-context.ts";
import { TABLE_SCHEMA } from "./table-schema.ts";

/**
 * Listing runs newest first from the sharded, keys-only indexes: every shard of the partitions that
 * match is queried for its newest runs before the cursor, the keys are merged, and the documents are
 * read (and checked against the filters: an index lags its table).
 */
export async function listRunPage(context: StoreContext, query: RunQuery = {}): Promise<RunPage> {
  const limit = pageLimit(query);
  const after = query.cursor === undefined ? undefined : decodeRunCursor(query.cursor);
  let before = after ? gsiSortKey(after.createdAt, after.runId) : undefined;
  if (limit === 0) return { runs: [] };
  const { index, partitions } = partitionsOf(query);
  const runs: RunRecord[] = [];
  const seen = new Set<string>();
  for (;;) {
    // One more than the page: a next page exists only when a further run matches. At most 1,000 per
    // round; each shard's newest `wanted` before the position keep the merge exact.
    const wanted = Math.min(limit + 1 - runs.length, 1000);
    const pages = await Promise.all(
      partitions.map((partition) => newest(context, index, partition, before, wanted)),
    );
    const candidates = [...new Map(pages.flat().map((key) => [key.pk as string, key])).values()]
      .sort((a, b) => ((a.gsiSk as string) < (b.gsiSk as string) ? 1 : -1))
      .slice(0, wanted);
    if (candidates.length === 0) return { runs };
    const documents = await readDocuments(
      context,
      candidates.map((key) => key.pk as string),
    );
    for (const key of candidates) {
      before = key.gsiSk as string;
      const document = documents.get(key.pk as string);
      if (!document || seen.has(key.pk as string)) continue;
      if (query.status !== undefined && document.status !== query.status) continue;
      if (query.workflowName !== undefined && document.workflowName !== query.workflowName) continue;
      if (query.tags !== undefined && !hasTags(tagsOf(document), query.tags)) continue;
      if (runs.length === limit) {
        const last = runs[runs.length - 1] as RunRecord;
        return { runs, nextCursor: encodeRunCursor(last) };
      }
      seen.add(key.pk as string);
      runs.push(await toRecord(context, document));
    }
    if (candidates.length < wanted) return { runs };
  }
}

/**
 * The shards to read: of a tag's runs (gsi2, the first tag asked for; the others are checked on the
 * documents), of the workflow index, or of the status index (every status without a filter).
 */
function partitionsOf(query: RunQuery): {
  index: { name: string; partitionKey: string };
  partitions: string[];
} {
  const [first] = Object.entries(query.tags ?? {});
  if (first)
    return {
      index: TABLE_SCHEMA.byWorkflowIndex,
      partitions: shards().map((shard) => tagIndexKey(tagKey(first[0], first[1]), shard)),
    };
  if (query.workflowName !== undefined)
    return {
      index: TABLE_SCHEMA.byWorkflowIndex,
      partitions: shards().map((shard) => workflowKey(query.workflowName as string, shard)),
    };
  // A pending run and a run in a short sleep are listed as running (see `listedAs`, `documentUpdate`);
  // runs created before the first was so stay listed as pending until their status changes.
  const statuses: readonly RunStatus[] =
    query.status === undefined
      ? RUN_STATUSES
      : query.status === "suspended" || query.status === "pending"
        ? ["running", query.status]
        : [query.status];
  return {
    index: TABLE_SCHEMA.byStatusIndex,
    partitions: statuses.flatMap((status) => shards().map((shard) => statusKey(status, shard))),
  };
}

/** The keys of a partition's newest runs before `from` or, `oldestFirst`, its oldest after `from`. */
async function newest(
  context: StoreContext,
  index: { name: string; partitionKey: string },
  partition: string,
  from: string | undefined,
  limit: number,
  oldestFirst = false,
): Promise<Item[]> {
  const page = await context.documents.send(
    new QueryCommand({
      TableName: context.tableName,
      IndexName: index.name,
      KeyConditionExpression:
        from === undefined ? "#pk = :pk" : `#pk = :pk AND gsiSk ${oldestFirst ? ">" : "<"} :from`,
      ExpressionAttributeNames: { "#pk": index.partitionKey },
      ExpressionAttributeValues: { ":pk": partition, ...(from === undefined ? {} : { ":from": from }) },
      ScanIndexForward: oldestFirst,
      Limit: limit,
    }),
  );
  return page.Items ?? [];
}

/** Run documents by partition key (BatchGetItem, retrying unprocessed keys). */
export async function readDocuments(
  context: StoreContext,
  pks: readonly string[],
): Promise<Map<string, Item>> {
  const found = new Map<string, Item>();
  for (let start = 0; start < pks.length; start += 100) {
    let keys = [...new Set(pks.slice(start, start + 100))].map((pk) => ({ pk, sk: RUN_SK }));
    for (let round = 0; keys.length > 0; round += 1) {
      const result = await context.documents.send(
        new BatchGetCommand({ RequestItems: { [context.tableName]: { Keys: keys, ConsistentRead: true } } }),
      );
      for (const item of result.Responses?.[context.tableName] ?? []) found.set(item.pk as string, item);
      keys = (result.UnprocessedKeys?.[context.tableName]?.Keys ?? []) as typeof keys;
      if (keys.length > 0) await pause(Math.min(1000, 20 * 2 ** round));
    }
  }
  return found;
}

/**
 * For the sweeper: runs whose due time has passed (a sleep that should have woken them, a finished
 * child whose parent must have been told), and runs listed as pending or running (which includes runs in
 * a short sleep) unchanged since `staleBefore`.
 */
export async function runsToSweep(
  context: StoreContext,
  options: { now: number; staleBefore: number; limit: number },
  scanFrom: Map<string, string>,
): Promise<{ due: RunRecord[]; stale: RunRecord[] }> {
  const stale = new Date(options.staleBefore).toISOString();
  const [due, pending, running] = await Promise.all([
    dueDocuments(context, options.now, options.limit),
    staleDocuments(context, "pending", stale, options.limit, scanFrom),
    staleDocuments(context, "running", stale, options.limit, scanFrom),
  ]);
  const records = (items: Item[]) => Promise.all(items.map((item) => toRecord(context, item)));
  return { due: await records(due), stale: await records([...pending, ...running]) };
}

/** Documents of runs the sweeper should look at by `now`: their due time (a wake-up, a parent to tell) has passed. */
async function dueDocuments(context: StoreContext, now: number, limit: number): Promise<Item[]> {
  const upTo = `${new Date(now).toISOString()}#~`;
  const pages = await Promise.all(
    shards().map((shard) =>
      context.documents.send(
        new QueryCommand({
          TableName: context.tableName,
          IndexName: TABLE_SCHEMA.byDueIndex.name,
          KeyConditionExpression: "duePk = :pk AND dueSk <= :upTo",
          ExpressionAttributeValues: { ":pk": dueKey(shard), ":upTo": upTo },
          Limit: limit,
        }),
      ),
    ),
  );
  const keys = pages.flatMap((page) => page.Items ?? []);
  const documents = await readDocuments(
    context,
    keys.map((key) => key.pk as string),
  );
  return [...documents.values()];
}

/**
 * Documents of runs listed in `status` whose last change is older than `updatedBefore` (ISO), among the
 * next `limit` of each shard, oldest first: each sweep goes on where the last one left off (`scanFrom`, by
 * partition) and starts again from the oldest past the end, so that runs that stay (pollers in short
 * sleeps) do not hide newer ones.
 */
async function staleDocuments(
  context: StoreContext,
  status: "pending" | "running",
  updatedBefore: string,
  limit: number,
  scanFrom: Map<string, string>,
): Promise<Item[]> {
  const pages = await Promise.all(
    shards().map(async (shard) => {
      const partition = statusKey(status, shard);
      const keys = await newest(
        context,
        TABLE_SCHEMA.byStatusIndex,
        partition,
        scanFrom.get(partition),
        limit,
        true,
      );
      if (keys.length < limit) scanFrom.delete(partition);
      else scanFrom.set(partition, keys[keys.length - 1]?.gsiSk as string);
      return keys;
    }),
  );
  const documents = await readDocuments(
    context,
    pages.flat().map((key) => key.pk as string),
  );
  // Listed under `status` (a running run, or one in a short sleep), and not moved since the index was read.
  return [...documents.values()].filter(
    (document) =>
      (document.gsi1pk as string).startsWith(statusKey(status, "")) &&
      (document.updatedAt as string) < updatedBefore,
  );
}
