import type { SerializedError } from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import { FINISHED_STATUSES, type RunRecord } from "../ports/event-store.ts";

/**
 * What a bar on the timeline shows:
 * - `running`: an attempt of a step with no outcome yet (it runs, or waits for its concurrency slot or its
 *   rate-limit turn: the log says when an attempt began only with its outcome; see {@link NO_OUTCOME_YET});
 * - `completed` / `failed`: an attempt and how it ended;
 * - `retrying`: an attempt that failed and will be tried again;
 * - `retry-wait`: the delay between a failed attempt and the next;
 * - `sleeping` / `slept`: a sleep not yet over, or over;
 * - `waiting` / `received` / `timed-out`: a wait for an event (hook) not yet over, or how it ended;
 *   `failed` when the event came with a payload that failed the wait's schema and with it the run;
 * - `abandoned`: work in flight when the run finished (cancelled, or failed elsewhere).
 * Child workflows use `running`, `completed` and `failed`.
 */
export type SegmentKind =
  | "running"
  | "completed"
  | "failed"
  | "retrying"
  | "retry-wait"
  | "sleeping"
  | "slept"
  | "waiting"
  | "received"
  | "timed-out"
  | "abandoned";

export interface TimelineSegment {
  kind: SegmentKind;
  /** Epoch ms. */
  start: number;
  /** Epoch ms; for an open segment, the end of the axis. */
  end: number;
  /** True when the segment has not ended yet (it runs to the end of the axis). */
  open: boolean;
  /** The attempt, for step segments. */
  attempt?: number;
  error?: SerializedError;
  /** Epoch ms a sleep or a retry delay is due. */
  dueAt?: number;
  /**
   * For a step attempt the executor measured: how long after it was sent it started (ms): a wait for its slot or
   * turn, a busy queue, or a worker that died running an earlier copy of it.
   */
  waitMs?: number;
  /** For a step attempt the executor measured: how long it ran (ms). */
  ranMs?: number;
}

export type RowStatus =
  | "running"
  | "completed"
  | "failed"
  | "retrying"
  | "sleeping"
  | "waiting"
  | "timed-out"
  | "abandoned";

export type RowKind = "step" | "sleep" | "hook" | "child";

/** One step (all its attempts), sleep, wait for an event, or child workflow. */
export interface TimelineRow {
  kind: RowKind;
  /** `charge#0`, `sleep#1`, a hook's or a child's id. */
  id: string;
  /** The step's name, `sleep`, the awaited event's name, or the child's workflow. */
  name: string;
  status: RowStatus;
  attempts: number;
  /** Epoch ms of the first segment. */
  start: number;
  /** Epoch ms the row ended (or the end of the axis while it goes on). */
  end: number;
  segments: TimelineSegment[];
  input?: unknown[];
  result?: unknown;
  error?: SerializedError;
  /** For a sleep: how long it was asked to last. */
  durationMs?: number;
  /** For a sleep: when it is (or was) due. */
  resumeAt?: number;
  /** For a child workflow: its run id. */
  childRunId?: string;
  /** For a step: how long its measured attempts ran, in all (ms). */
  ranMs?: number;
  /** For a step: how long after they were sent its measured attempts started, in all (ms). */
  waitMs?: number;
}

export interface Timeline {
  /** Epoch ms of the run's start: the axis' origin. */
  start: number;
  /** Epoch ms of the axis' end: the run's end, or now while it is active. */
  end: number;
  /** True while the run is not finished (open segments grow with time). */
  active: boolean;
  rows: TimelineRow[];
}

const time = (event: WorkflowEvent) => Date.parse(event.timestamp);

/**
 * What an attempt with no outcome yet is doing, as far as the log knows: a limited step's attempt is sent, and
 * its `step_started` recorded, before it has its slot or turn (its outcome carries when it began).
 */
export const NO_OUTCOME_YET =
  "no outcome yet: running, or waiting for its concurrency slot or rate-limit turn if the step has one";

/** An event read by field name. */
type LooseEvent = { type: string } & Record<string, unknown>;

/**
 * Builds the bars of a run's timeline from its log: each step's attempts (step_started → step_completed,
 * step_failed or step_retrying), the waits between retries, and each sleep (sleep_created →
 * sleep_completed). Event types it does not know are left out.
 */
export function buildTimeline(run: RunRecord, events: readonly WorkflowEvent[], now: number): Timeline {
  const first = events[0];
  const last = events[events.length - 1];
  const start = first ? time(first) : Date.parse(run.createdAt);
  const active = !FINISHED_STATUSES.has(run.status);
  const lastAt = last ? time(last) : start;
  const end = active ? Math.max(now, lastAt) : Math.max(lastAt, Date.parse(run.updatedAt) || lastAt);
  const rows = new Map<string, TimelineRow>();
  const openAttempt = new Map<string, TimelineSegment>();
  const openWait = new Map<string, TimelineSegment>();

  const rowOf = (kind: RowKind, id: string, name: string, at: number): TimelineRow => {
    let row = rows.get(id);
    if (!row) {
      row = { kind, id, name, status: "running", attempts: 0, start: at, end: at, segments: [] };
      rows.set(id, row);
    }
    return row;
  };
  const close = (segment: TimelineSegment | undefined, at: number, kind?: SegmentKind) => {
    if (!segment) return;
    segment.end = Math.max(segment.start, at);
    segment.open = false;
    if (kind) segment.kind = kind;
  };

  /*
   * Waits for events (hooks) and child workflows: read by field name, so that this view keeps working
   * while those event types evolve.
   */
  const otherEvent = (event: LooseEvent, at: number) => {
    const text = (key: string) => (typeof event[key] === "string" ? (event[key] as string) : "");
    switch (event.type) {
      case "hook_created": {
        const row = rowOf("hook", text("hookId"), text("eventName"), at);
        row.status = "waiting";
        const timeoutAt = typeof event.timeoutAt === "number" ? event.timeoutAt : undefined;
        row.segments.push({
          kind: "waiting",
          start: at,
          end,
          open: true,
          ...(timeoutAt ? { dueAt: timeoutAt } : {}),
        });
        break;
      }
      case "hook_received":
      case "hook_timed_out": {
        const row = rowOf("hook", text("hookId"), text("eventName"), at);
        const received = event.type === "hook_received";
        close(
          row.segments.find((candidate) => candidate.open),
          at,
          received ? "received" : "timed-out",
        );
        row.status = received ? "completed" : "timed-out";
        if (received) row.result = event.payload;
        break;
      }
      case "child_started": {
        const row = rowOf("child", text("childId"), text("workflowName"), at);
        row.childRunId = text("childRunId");
        row.input = Array.isArray(event.input) ? event.input : [];
        row.status = "running";
        row.segments.push({ kind: "running", start: at, end, open: true });
        break;
      }
      case "child_completed":
      case "child_failed": {
        const row = rowOf("child", text("childId"), text("workflowName") || "child", at);
        const ok = event.type === "child_completed";
        const segment = row.segments.find((candidate) => candidate.open);
        close(segment, at, ok ? "completed" : "failed");
        row.status = ok ? "completed" : "failed";
        if (ok) row.result = event.result;
        else if (segment) {
          segment.error = event.error as SerializedError;
          row.error = event.error as SerializedError;
        }
        break;
      }
      default:
        break;
    }
  };

  for (const event of events) {
    const at = time(event);
    switch (event.type) {
      case "step_started": {
        const row = rowOf("step", event.stepId, event.stepName, at);
        close(openWait.get(event.stepId), at);
        openWait.delete(event.stepId);
        close(openAttempt.get(event.stepId), at, "abandoned");
        const segment: TimelineSegment = {
          kind: "running",
          start: at,
          end,
          open: true,
          attempt: event.attempt,
        };
        row.segments.push(segment);
        row.attempts = Math.max(row.attempts, event.attempt);
        row.input = event.input;
        row.status = "running";
        openAttempt.set(event.stepId, segment);
        break;
      }
      case "step_completed":
      case "step_failed":
      case "step_retrying": {
        const row = rowOf("step", event.stepId, event.stepName, at);
        let segment = openAttempt.get(event.stepId);
        if (!segment) {
          segment = { kind: "running", start: at, end: at, open: false, attempt: event.attempt };
          row.segments.push(segment);
        }
        openAttempt.delete(event.stepId);
        const kind =
          event.type === "step_completed"
            ? "completed"
            : event.type === "step_failed"
              ? "failed"
              : "retrying";
        close(segment, at, kind);
        if (event.startedAt !== undefined) {
          segment.waitMs = Math.max(0, event.startedAt - segment.start);
          segment.ranMs = event.durationMs ?? 0;
          row.waitMs = (row.waitMs ?? 0) + segment.waitMs;
          row.ranMs = (row.ranMs ?? 0) + segment.ranMs;
        }
        row.status = kind;
        if (event.type === "step_completed") row.result = event.result;
        else {
          segment.error = event.error;
          row.error = event.error;
        }
        if (event.type === "step_retrying") {
          const wait: TimelineSegment = {
            kind: "retry-wait",
            start: at,
            end,
            open: true,
            attempt: event.nextAttempt,
            dueAt: event.retryAt,
          };
          row.segments.push(wait);
          openWait.set(event.stepId, wait);
        }
        break;
      }
      case "sleep_created": {
        const row = rowOf("sleep", event.sleepId, "sleep", at);
        row.status = "sleeping";
        row.durationMs = event.durationMs;
        row.resumeAt = event.resumeAt;
        row.segments.push({ kind: "sleeping", start: at, end, open: true, dueAt: event.resumeAt });
        break;
      }
      case "sleep_completed": {
        const row = rowOf("sleep", event.sleepId, "sleep", at);
        const segment = row.segments.find((candidate) => candidate.open);
        close(segment, at, "slept");
        row.status = "completed";
        break;
      }
      default:
        otherEvent(event as unknown as LooseEvent, at);
        break;
    }
  }

  const rejected = active ? undefined : rejectedWait(events);
  const rejectedRow = rejected && rows.get(rejected.hookId);
  if (rejected && rejectedRow) {
    const segment = rejectedRow.segments.at(-1);
    if (segment) Object.assign(segment, { kind: "failed", error: rejected.error });
    rejectedRow.status = "failed";
    rejectedRow.error = rejected.error;
  }

  for (const row of rows.values()) {
    for (const segment of row.segments) {
      if (!segment.open) continue;
      segment.end = end;
      // A finished run leaves nothing running: what was still in flight was abandoned.
      if (!active) {
        segment.open = false;
        segment.kind = "abandoned";
      }
    }
    if (
      !active &&
      (row.status === "running" ||
        row.status === "sleeping" ||
        row.status === "retrying" ||
        row.status === "waiting")
    )
      row.status = "abandoned";
    row.start = row.segments[0]?.start ?? row.start;
    row.end = Math.max(...row.segments.map((segment) => segment.end), row.start);
  }
  return { start, end, active, rows: [...rows.values()] };
}

/**
 * The wait whose event failed the run with a payload that does not match the wait's schema. The schema is
 * checked as the workflow takes the payload, so the log has the event as received and the run's
 * `EventPayloadError` (naming the event) after it: the wait is the last one that received that event,
 * unless a step or a child run failed with the same error after it (the run failed with theirs).
 */
function rejectedWait(
  events: readonly WorkflowEvent[],
): { hookId: string; error: SerializedError } | undefined {
  const last = events.at(-1);
  if (last?.type !== "workflow_failed" || last.error.code !== "INVALID_EVENT_PAYLOAD") return undefined;
  const { error } = last;
  for (let index = events.length - 2; index >= 0; index -= 1) {
    const event = events[index] as unknown as LooseEvent;
    if (event.type === "hook_received" && error.message.includes(`event "${String(event.eventName)}"`))
      return { hookId: String(event.hookId), error };
    // A step or a child run that failed with this very error passed it on: no wait of the run failed.
    const passedOn = event.type === "step_failed" || event.type === "child_failed";
    if (passedOn && (event.error as SerializedError | undefined)?.message === error.message) return undefined;
  }
  return undefined;
}

/** For a child run: its parent run and the parent's id for it (from `workflow_started`). */
export function parentOf(events: readonly WorkflowEvent[]): { runId: string; childId: string } | undefined {
  const parent = (events[0] as { parent?: { runId?: unknown; childId?: unknown } } | undefined)?.parent;
  if (!parent || typeof parent.runId !== "string") return undefined;
  return { runId: parent.runId, childId: String(parent.childId ?? "") };
}
