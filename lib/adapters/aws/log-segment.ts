import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { GetCommand, PutCommand } from "./dynamodb-sdk.ts";
import { packEvents, unpackEvents } from "./event-codec.ts";
import { runPk } from "./keys.ts";
import { COMMIT_PART_BYTES } from "./limits.ts";
import type { StoreContext } from "./store-context.ts";

/**
 * A long run's log, compacted: one item (`sk = SEG`) holding its first events in one DEFLATE stream,
 * rewritten each time the log passes another `SEGMENT_EVENTS` events. Events compress far better
 * together than one commit at a time (100 queued steps: about 3 KB here against 25 KB of commit items),
 * so an instance that has not seen the run reads the segment and then only the commits after it: what
 * it reads no longer grows with the whole log, only with the segment's few bytes per event.
 */
export const SEGMENT_EVENTS = 200;

const segmentKey = (runId: string) => ({ pk: runPk(runId), sk: "SEG" });

/**
 * Writes the segment of a whole log, unless one at least as long is there. Best effort: the log is
 * complete without it, so a segment too large for an item (large payloads inline) is not written, and
 * a failed write is left for the next one.
 */
export async function putSegment(
  context: StoreContext,
  runId: string,
  events: readonly WorkflowEvent[],
): Promise<void> {
  const z = packEvents(runId, JSON.stringify(events));
  if (z.byteLength > COMMIT_PART_BYTES) return;
  await context.documents
    .send(
      new PutCommand({
        TableName: context.tableName,
        Item: { ...segmentKey(runId), end: events.length, z },
        ConditionExpression: "attribute_not_exists(#end) OR #end < :end",
        ExpressionAttributeNames: { "#end": "end" },
        ExpressionAttributeValues: { ":end": events.length },
      }),
    )
    .catch(() => {});
}

/**
 * The first events of a run's log as its segment holds them (none without one). An eventually
 * consistent read: any segment ever written is the start of the log, and the commits after it are read.
 */
export async function readSegment(context: StoreContext, runId: string): Promise<WorkflowEvent[]> {
  const { Item: item } = await context.documents.send(
    new GetCommand({ TableName: context.tableName, Key: segmentKey(runId) }),
  );
  if (!item) return [];
  const records = JSON.parse(unpackEvents(runId, item.z as Uint8Array)) as unknown[];
  return records.map((record, index) => parseEvent(record, `run ${runId} (event ${index + 1}, segment)`));
}
