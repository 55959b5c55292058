import type { WorkflowEvent } from "../core/events.ts";
import { describeEvent, errorLine } from "../inspect/describe.ts";
import { compactJson, formatSpan } from "../inspect/format.ts";
import { waitingFor } from "../inspect/waiting-for.ts";
import type { RunRecord } from "../ports/event-store.ts";

/** Past this many events, a timeline shows the first few and the last ones. */
const MAX_LINES = 60;
const HEAD_LINES = 10;

/** What a run's document says of its end, or what it waits for. */
function headline(run: RunRecord, events: readonly WorkflowEvent[]): string {
  const name = `Run ${run.runId} of ${run.workflowName}`;
  switch (run.status) {
    case "completed":
      return `${name} completed with ${compactJson(run.result, 200)}`;
    case "failed":
      return `${name} failed: ${errorLine(run.error)}`;
    case "cancelled": {
      const cancelled = events.findLast((event) => event.type === "workflow_cancelled");
      return `${name} was cancelled${cancelled?.type === "workflow_cancelled" ? `: ${cancelled.reason}` : ""}`;
    }
    case "continued": {
      const continued = events.findLast((event) => event.type === "workflow_continued_as_new");
      return `${name} continued as new${continued?.type === "workflow_continued_as_new" ? ` in run ${continued.continuedAs}` : ""}`;
    }
    case "suspended":
    case "pending": {
      // As `tsworkflow runs show` says it: a pending run's limits, a suspended run's waits.
      const waits = waitingFor(run, events);
      return `${name} is ${run.status}, waiting for ${waits.length > 0 ? waits.join(", ") : "nothing"}`;
    }
    default:
      return `${name} is ${run.status}`;
  }
}

/**
 * A run's log as text, one event a line with its time from the run's start:
 * ```
 * Run 0193…-x7 of approval_order was cancelled: customer changed their mind
 *    1  +0ms    workflow_started    approval_order("order-1", "https://shop.example")
 *    2  +0ms    hook_created        hook#0 waits for "webhook.0" until 2026-01-04 10:00:00Z
 *    …
 * ```
 * @example
 * import { formatTimeline } from "tsworkflow/testing";
 * console.log(formatTimeline(await storage.getRun(runId), await storage.getEvents(runId)));
 */
export function formatTimeline(run: RunRecord, events: readonly WorkflowEvent[]): string {
  const origin = events[0] ? Date.parse(events[0].timestamp) : Date.parse(run.createdAt);
  const line = (event: WorkflowEvent) => {
    const offset = `+${formatSpan(Date.parse(event.timestamp) - origin)}`;
    const text = describeEvent(event);
    return `  ${String(event.seq).padStart(4)}  ${offset.padEnd(9)} ${event.type.padEnd(19)} ${text}`.trimEnd();
  };
  const lines =
    events.length <= MAX_LINES
      ? events.map(line)
      : [
          ...events.slice(0, HEAD_LINES).map(line),
          `  … ${events.length - MAX_LINES} more events …`,
          ...events.slice(events.length - (MAX_LINES - HEAD_LINES)).map(line),
        ];
  return [headline(run, events), ...lines].join("\n");
}
