import type { WorkflowEvent } from "../core/events.ts";

/** Which part of a run's log to give: `runs events --after --limit`, `GET /api/runs/<id>?after=&limit=`. */
export interface EventWindowQuery {
  /** Only the events after this seq. @default 0 (from the first event) */
  after?: number;
  /** At most this many events. @default every event after `after` */
  limit?: number;
}

/** A part of a run's log. */
export interface EventWindow {
  events: WorkflowEvent[];
  /** The seq to pass as `after` for the events that follow the window: present when some do. */
  nextAfter?: number;
}

/**
 * The events of `log` (a whole log, as `getEvents` returns it) after seq `after`, at most `limit` of them.
 * A log's seqs run 1, 2, 3… (every store checks it on append), so seq `after` ends at index `after`.
 */
export function eventWindow(
  log: readonly WorkflowEvent[],
  { after = 0, limit }: EventWindowQuery,
): EventWindow {
  const events = log.slice(after, limit === undefined ? undefined : after + limit);
  const end = Math.min(after, log.length) + events.length;
  return end < log.length ? { events, nextAfter: end } : { events };
}
