import type { SerializedError } from "../lib/core/errors.ts";
import type { WorkflowEvent } from "../lib/core/events.ts";
import { FINISHED_STATUSES, type RunRecord } from "../lib/ports/event-store.ts";

/**
 * What a bar on the timeline shows:
 * - `running`: an attempt of a step with no outcome yet;
 * - `completed` / `failed`: an attempt and how it ended;
 * - `retrying`: an attempt that failed and will be tried again;
 * - `retry-wait`: the delay between a failed attempt and the next;
 * - `sleeping` / `slept`: a sleep not yet over, or over;
 * - `abandoned`: work in flight when the run finished (cancelled, or failed elsewhere).
 */
export type SegmentKind =
  | "running"
  | "completed"
  | "failed"
  | "retrying"
  | "retry-wait"
  | "sleeping"
  | "slept"
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
}

export type RowStatus = "running" | "completed" | "failed" | "retrying" | "sleeping" | "abandoned";

/** One step (all its attempts) or one sleep. */
export interface TimelineRow {
  kind: "step" | "sleep";
  /** `charge#0`, `sleep#1`. */
  id: string;
  /** The step's name, or `sleep`. */
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

  const rowOf = (kind: "step" | "sleep", id: string, name: string, at: number): TimelineRow => {
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
        break;
    }
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
    if (!active && (row.status === "running" || row.status === "sleeping" || row.status === "retrying"))
      row.status = "abandoned";
    row.start = row.segments[0]?.start ?? row.start;
    row.end = Math.max(...row.segments.map((segment) => segment.end), row.start);
  }
  return { start, end, active, rows: [...rows.values()] };
}

/** Where the last `workflow_suspended` event says the run waits, while it is suspended. */
export function waitingFor(run: RunRecord, events: readonly WorkflowEvent[]): string[] {
  if (run.status !== "suspended") return [];
  for (let index = events.length - 1; index >= 0; index -= 1) {
    const event = events[index] as WorkflowEvent;
    if (event.type === "workflow_suspended") return event.waitingFor;
  }
  return [];
}
