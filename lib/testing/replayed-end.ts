import type { EventDraft, EventType, WorkflowEvent } from "../core/events.ts";
import { stableStringify } from "../core/serialization.ts";
import { compactJson, cut } from "../inspect/format.ts";

/** The events that end a run. */
const ENDS: ReadonlySet<EventType> = new Set([
  "workflow_completed",
  "workflow_failed",
  "workflow_continued_as_new",
  "workflow_cancelled",
]);

/** Values and errors in messages: the first 200 characters. */
const SHOWN = 200;

/** What the end of a run holds that its code decided: its result, its error's name and message, the next input. */
function decided(end: EventDraft): unknown {
  switch (end.type) {
    case "workflow_completed":
      return end.result;
    case "workflow_failed":
      return [end.error.name, end.error.message];
    case "workflow_continued_as_new":
      return end.input;
    default:
      return undefined;
  }
}

function describeEnd(end: EventDraft): string {
  switch (end.type) {
    case "workflow_completed":
      return `the result ${compactJson(end.result, SHOWN)}`;
    case "workflow_failed":
      return `the error ${cut(`${end.error.name}: ${end.error.message}`, SHOWN)}`;
    case "workflow_continued_as_new":
      return `continueAsNew with ${compactJson(end.input, SHOWN)}`;
    default:
      return end.type;
  }
}

/**
 * How the replay of a finished run ends otherwise than the run did, if it does: the event of the log that
 * records the run's end (`seq`), and both ends. A replay whose calls all match the log still differs when
 * the workflow computes its result, its error or the input it continues with from the clock or a random
 * number (`return Date.now() - start`). Not compared: a cancelled run's end (the cancellation decided it),
 * and a replay that has not ended (the engine failed the run while it waited: a `maxDuration` deadline).
 * @param replayed the end the replay would append, undefined while it waits
 */
export function endDifference(
  events: readonly WorkflowEvent[],
  replayed: EventDraft | undefined,
): { seq: number; message: string } | undefined {
  const recorded = events.findLast((event) => ENDS.has(event.type));
  if (!recorded || !replayed || recorded.type === "workflow_cancelled") return undefined;
  if (
    replayed.type === recorded.type &&
    stableStringify(decided(replayed)) === stableStringify(decided(recorded))
  )
    return undefined;
  return {
    seq: recorded.seq,
    message: `The log ends with ${describeEnd(recorded)} but the replay ends with ${describeEnd(replayed)}`,
  };
}
