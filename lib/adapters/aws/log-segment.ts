import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { PutCommand } from "./dynamodb-sdk.ts";
import { packEvents, unpackEvents } from "./event-codec.ts";
import { runPk } from "./keys.ts";
import { COMMIT_PART_BYTES } from "./limits.ts";
import { queryAll } from "./queries.ts";
import type { StoreContext } from "./store-context.ts";

/**
 * A long run's log, compacted: events compress far better together than one commit at a time (100
 * queued steps: about 3 KB in one DEFLATE stream against 25 KB of commit items). The commit that takes
 * the log past `k * SEGMENT_EVENTS` events writes segment `k` (`sk = SEG#<k>`): the events from
 * `(k - 1) * SEGMENT_EVENTS + 1` to the end of that commit, so that each segment ends where a commit
 * ends (the next overlaps it by the rest of that commit). An instance new to the run reads the segments,
 * then only the commits after them: what it reads grows with the segments' few bytes per event, and
 * each event is written to a segment once.
 */
export const SEGMENT_EVENTS = 100;

const SEGMENT_PREFIX = "SEG#";

/**
 * Writes the segment that the commit ending at `log.length` completes (`log`: the whole log). Best
 * effort: the log is whole without it, so a segment too large for an item (large payloads inline) is
 * not written, and a failed write is not retried (readers then read the commits from there on).
 */
export async function putSegment(
  context: StoreContext,
  runId: string,
  log: readonly WorkflowEvent[],
): Promise<void> {
  const index = Math.floor(log.length / SEGMENT_EVENTS);
  const z = packEvents(runId, JSON.stringify(log.slice((index - 1) * SEGMENT_EVENTS)));
  if (z.byteLength > COMMIT_PART_BYTES) return;
  await context.documents
    .send(
      new PutCommand({
        TableName: context.tableName,
        Item: { pk: runPk(runId), sk: `${SEGMENT_PREFIX}${String(index).padStart(6, "0")}`, z },
      }),
    )
    .catch(() => {});
}

/**
 * The start of a run's log as its segments hold it, up to the first one missing or unreadable (none
 * without any), read eventually consistent: segments never change once written, and the commits after
 * them are read.
 */
export async function readSegments(context: StoreContext, runId: string): Promise<WorkflowEvent[]> {
  const items = await queryAll(context, {
    KeyConditionExpression: "pk = :pk AND begins_with(sk, :seg)",
    ExpressionAttributeValues: { ":pk": runPk(runId), ":seg": SEGMENT_PREFIX },
  });
  const log: WorkflowEvent[] = [];
  for (const item of items) {
    try {
      const records = JSON.parse(unpackEvents(runId, item.z as Uint8Array)) as { seq: number }[];
      if ((records[0]?.seq ?? 0) > log.length + 1) break;
      for (const record of records)
        if (record.seq > log.length) log.push(parseEvent(record, `run ${runId} (segment ${item.sk})`));
    } catch {
      // A segment that does not read is a copy gone bad: the commits from there on hold the log.
      break;
    }
  }
  return log;
}
