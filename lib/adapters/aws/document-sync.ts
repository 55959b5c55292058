import type { WorkflowEvent } from "../../core/events.ts";
import type { RunTags } from "../../core/tags.ts";
import { FINISHED_STATUSES, type RunPatch, type RunRecord } from "../../ports/event-store.ts";
import type { StoredCommit } from "./commit-items.ts";
import { conditionFailed } from "./dynamodb-errors.ts";
import { PutCommand, UpdateCommand } from "./dynamodb-sdk.ts";
import { RUN_SK, runPk } from "./keys.ts";
import { getDocument } from "./queries.ts";
import { documentUpdate, dueAt, tagItems, toRecord } from "./run-document.ts";
import type { RunFacts } from "./run-facts.ts";
import type { StoreContext } from "./store-context.ts";

/*
 * Keeping the run document in step with the log: it is updated right after each commit (monotonic on
 * `version`), except a commit that only moves a running run on (see `DynamoDBEngineStore.commit`), and
 * repaired from the last commit when a crash fell in between.
 */

/** The run's record, from its document; learns the version the document holds. */
export async function readRun(
  context: StoreContext,
  facts: RunFacts,
  runId: string,
): Promise<RunRecord | undefined> {
  const item = await getDocument(context, runId);
  if (!item) return undefined;
  const version = item.version as number;
  facts.learn(runId, {
    documentVersion: version,
    boundary: version,
    document: { through: version, status: item.status as string, at: Date.parse(item.updatedAt as string) },
  });
  return toRecord(context, item);
}

/** Brings the run document up to `version` (the commit from `firstSeq` that holds `events`). */
export async function updateDocument(
  context: StoreContext,
  facts: RunFacts,
  ttlSeconds: number,
  runId: string,
  version: number,
  firstSeq: number,
  patch: RunPatch,
  events: readonly WorkflowEvent[],
): Promise<void> {
  const child = FINISHED_STATUSES.has(patch.status) ? await isChild(context, facts, runId) : false;
  const updatedAt = Date.parse(patch.updatedAt) || Date.now();
  const update = documentUpdate({
    runId,
    version,
    firstSeq,
    patch,
    due: dueAt(patch, events, child),
    expiresAt: Math.floor(updatedAt / 1000) + ttlSeconds,
  });
  try {
    await context.documents.send(
      new UpdateCommand({ TableName: context.tableName, Key: { pk: runPk(runId), sk: RUN_SK }, ...update }),
    );
    facts.learn(runId, {
      documentVersion: version,
      document: { through: version, status: patch.status, at: updatedAt },
    });
  } catch (error) {
    // The document is already at a later version: the log is too, and this process's next commit on the
    // run fails and reads the run again.
    if (!conditionFailed(error)) throw error;
  }
}

/** Brings the run document up to a commit it missed (a crash between the commit and the update). */
export async function repairDocument(
  context: StoreContext,
  facts: RunFacts,
  ttlSeconds: number,
  runId: string,
  last: StoredCommit,
): Promise<void> {
  const { head, events } = last;
  // Items written before commits kept their status beside the events held it in `patch`.
  const legacy = typeof head.patch === "string" ? (JSON.parse(head.patch) as Partial<RunPatch>) : {};
  const terminal = events.findLast(
    (event) => event.type === "workflow_completed" || event.type === "workflow_failed",
  );
  const patch: RunPatch = {
    status: (head.status ?? legacy.status) as RunPatch["status"],
    updatedAt: (head.updatedAt ?? legacy.updatedAt) as string,
    ...(terminal?.type === "workflow_completed" ? { result: terminal.result } : {}),
    ...(terminal?.type === "workflow_failed" ? { error: terminal.error } : {}),
  };
  const version = head.end as number;
  await updateDocument(
    context,
    facts,
    ttlSeconds,
    runId,
    version,
    version - events.length + 1,
    patch,
    events,
  );
}

/**
 * Lists the run under its tags (puts are idempotent; an item of a value replaced since is left, and
 * filtered out on listing by the document's tags). One `PutItem` each: a run carries at most 16 tags.
 */
export async function writeTagItems(context: StoreContext, runId: string, tags: RunTags): Promise<void> {
  const document = await getDocument(context, runId, "createdAt");
  if (!document) return;
  await Promise.all(
    tagItems(runId, document.createdAt as string, tags).map((Item) =>
      context.documents.send(new PutCommand({ TableName: context.tableName, Item })),
    ),
  );
}

/** True when the run is a child run (known from its first event, else read from its document). */
async function isChild(context: StoreContext, facts: RunFacts, runId: string): Promise<boolean> {
  const known = facts.get(runId)?.child;
  if (known !== undefined) return known;
  return (await getDocument(context, runId, "parentRunId"))?.parentRunId !== undefined;
}
