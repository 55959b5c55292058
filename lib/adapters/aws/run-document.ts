import type { SerializedError } from "../../core/errors.ts";
import { resumeAtOf, type WorkflowEvent } from "../../core/events.ts";
import { optional } from "../../core/optional.ts";
import { type RunTags, tagKey } from "../../core/tags.ts";
import { FINISHED_STATUSES, type RunPatch, type RunRecord, type RunStatus } from "../../ports/event-store.ts";
import { type Item, readCommitEvent } from "./commit-items.ts";
import {
  commitSk,
  dueKey,
  dueSortKey,
  gsiSortKey,
  RUN_SK,
  runPk,
  shardOf,
  statusKey,
  tagIndexKey,
  tagSk,
  workflowKey,
} from "./keys.ts";
import { byteLength, MAX_SQS_DELAY_SECONDS, RUN_DOCUMENT_INLINE_BYTES } from "./limits.ts";
import type { StoreContext } from "./store-context.ts";
import { TABLE_SCHEMA } from "./table-schema.ts";

/**
 * The run document (`sk = RUN`): status, timestamps and version for reads and listing, kept a few KB
 * whatever the run holds. Its input, result and error are copied only when small; a larger one is
 * left in the log and the document names the commit that holds it (`inputAt`, `resultAt`, `errorAt`).
 */

const FIRST_COMMIT = commitSk(1);

/** The document of a new run (written with its first commit). */
export function newRunDocument(run: RunRecord, parentRunId: string | undefined): Item {
  const shard = shardOf(run.runId);
  return {
    pk: runPk(run.runId),
    sk: RUN_SK,
    runId: run.runId,
    workflowName: run.workflowName,
    status: run.status,
    ...inlineOrPointer("input", run.input, FIRST_COMMIT),
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    version: run.version,
    ...optional("idempotencyKey", run.idempotencyKey),
    ...optional("workflowVersion", run.workflowVersion),
    ...(run.tags === undefined ? {} : { tags: JSON.stringify(run.tags) }),
    ...optional("parentRunId", parentRunId),
    gsi1pk: statusKey(listedAs(run.status), shard),
    gsi2pk: workflowKey(run.workflowName, shard),
    gsiSk: gsiSortKey(run.createdAt, run.runId),
  };
}

/** What the sweeper must look at, and when: a sleep's wake-up, a finished child's parent. */
export function dueAt(
  patch: RunPatch,
  events: readonly WorkflowEvent[],
  isChild: boolean,
): number | undefined {
  if (FINISHED_STATUSES.has(patch.status))
    return isChild ? Date.parse(patch.updatedAt) || Date.now() : undefined;
  return patch.status === "suspended" ? resumeAtOf(events) : undefined;
}

/**
 * The status a run is listed under in gsi1: a pending run is listed as running from the start, so that
 * its first activation moves no index key (2 WRU a run that goes on past it); listing and the sweeper
 * read the documents anyway.
 */
const listedAs = (status: RunStatus) => (status === "pending" ? "running" : status);

/**
 * The update of the document after the commit `firstSeq..version` (monotonic on `version`).
 *
 * A run asleep until at most SQS's longest delay (15 minutes: its timer is a delayed message) stays
 * listed as running in gsi1 and out of the sweeper's gsi3, while its document says `suspended`: such a
 * sleep then moves no index key (2 WRU instead of 4 to 6). Listing reads the documents anyway; the
 * sweeper finds such a run, if its timer is lost, as a running run with nothing heard for the stale time.
 */
export function documentUpdate(options: {
  runId: string;
  version: number;
  firstSeq: number;
  patch: RunPatch;
  due: number | undefined;
  /** Epoch seconds after which DynamoDB deletes the finished run's document. */
  expiresAt: number;
}): {
  UpdateExpression: string;
  ConditionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Record<string, unknown>;
} {
  const { runId, version, firstSeq, patch, due } = options;
  const shard = shardOf(runId);
  const short =
    patch.status === "suspended" &&
    due !== undefined &&
    due - Date.parse(patch.updatedAt) <= MAX_SQS_DELAY_SECONDS * 1e3;
  const names: Record<string, string> = {
    "#status": "status",
    "#version": "version",
    "#ttl": TABLE_SCHEMA.ttlAttribute,
    "#result": "result",
    "#error": "error",
  };
  const values: Record<string, unknown> = {
    ":status": patch.status,
    ":updatedAt": patch.updatedAt,
    ":version": version,
    ":gsi1pk": statusKey(short ? "running" : listedAs(patch.status), shard),
  };
  const sets = ["#status = :status", "updatedAt = :updatedAt", "#version = :version", "gsi1pk = :gsi1pk"];
  const removes: string[] = [];
  const at = commitSk(firstSeq);
  for (const [field, value] of [
    ["result", patch.result],
    ["error", patch.error],
  ] as const) {
    if (value === undefined) continue;
    const json = JSON.stringify(value ?? null);
    if (byteLength(json) <= RUN_DOCUMENT_INLINE_BYTES) {
      sets.push(`#${field} = :${field}`);
      values[`:${field}`] = json;
      removes.push(`${field}At`);
    } else {
      sets.push(`${field}At = :${field}At`);
      values[`:${field}At`] = at;
      removes.push(`#${field}`);
    }
  }
  if (patch.tags !== undefined) {
    sets.push("tags = :tags");
    values[":tags"] = JSON.stringify(patch.tags);
  }
  if (due === undefined || short) removes.push("duePk", "dueSk");
  else {
    sets.push("duePk = :duePk", "dueSk = :dueSk");
    values[":duePk"] = dueKey(shard);
    values[":dueSk"] = dueSortKey(due, runId);
  }
  if (FINISHED_STATUSES.has(patch.status)) {
    sets.push("#ttl = :ttl");
    values[":ttl"] = options.expiresAt;
  } else {
    removes.push("#ttl");
  }
  const expression = `SET ${sets.join(", ")}${removes.length > 0 ? ` REMOVE ${removes.join(", ")}` : ""}`;
  for (const key of Object.keys(names)) if (!expression.includes(key)) delete names[key];
  return {
    UpdateExpression: expression,
    // Monotonic: a late update never rolls the document back.
    ConditionExpression: "attribute_exists(pk) AND #version <= :version",
    ExpressionAttributeNames: { ...names, "#version": "version" },
    ExpressionAttributeValues: values,
  };
}

/** `{ field: json }` when the value is small, else `{ fieldAt: <commit sk> }`. */
function inlineOrPointer(field: string, value: unknown, at: string): Record<string, string> {
  const json = JSON.stringify(value ?? null);
  return byteLength(json) <= RUN_DOCUMENT_INLINE_BYTES ? { [field]: json } : { [`${field}At`]: at };
}

/** The run record of a document, reading large values from the commits it points to. */
export async function toRecord(context: StoreContext, item: Item): Promise<RunRecord> {
  const runId = item.runId as string;
  /** The document's copy of `field`, else the event of the commit it points to that holds it. */
  const stored = async (
    field: "input" | "result" | "error",
    type: "workflow_started" | "workflow_completed" | "workflow_failed",
    at = item[`${field}At`] as string | undefined,
  ): Promise<unknown> => {
    if (item[field] !== undefined) return JSON.parse(item[field] as string);
    if (at === undefined) return undefined;
    const event = (await readCommitEvent(context, runId, at, type)) as Record<string, unknown> | undefined;
    return event?.[field];
  };
  const [input, result, error] = await Promise.all([
    // A document written before pointers has neither: the input was kept in the log only.
    stored("input", "workflow_started", (item.inputAt as string | undefined) ?? FIRST_COMMIT),
    stored("result", "workflow_completed"),
    stored("error", "workflow_failed"),
  ]);
  return {
    runId,
    workflowName: item.workflowName as string,
    status: item.status as RunStatus,
    input: (input ?? []) as unknown[],
    ...optional("result", result),
    ...optional("error", error as SerializedError | undefined),
    createdAt: item.createdAt as string,
    updatedAt: item.updatedAt as string,
    version: item.version as number,
    ...optional("idempotencyKey", item.idempotencyKey as string | undefined),
    ...(item.tags === undefined ? {} : { tags: tagsOf(item) }),
    ...optional("workflowVersion", item.workflowVersion as string | undefined),
  };
}

/** The tags a run document holds. */
export function tagsOf(item: Item): RunTags {
  return item.tags === undefined ? {} : (JSON.parse(item.tags as string) as RunTags);
}

/**
 * The items that list a run under each of its tags: in the run's partition (deleted with the run), with
 * `gsi2pk = TAG#key=value#<shard>` so that gsi2 finds the runs of a tag newest first, as it does a workflow's.
 */
export function tagItems(runId: string, createdAt: string, tags: RunTags | undefined): Item[] {
  const shard = shardOf(runId);
  return Object.entries(tags ?? {}).map(([key, value]) => ({
    pk: runPk(runId),
    sk: tagSk(tagKey(key, value)),
    runId,
    gsi2pk: tagIndexKey(tagKey(key, value), shard),
    gsiSk: gsiSortKey(createdAt, runId),
  }));
}
