import type { SerializedError } from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import { compactJson, formatSpan, formatTime } from "./format.ts";

/** `FatalError: card declined` */
export function errorLine(error: SerializedError | undefined): string {
  if (!error) return "";
  return `${error.name}: ${error.message}`;
}

/** `tenant=acme plan=pro` */
export const describeTags = (tags: Record<string, string>) =>
  Object.entries(tags)
    .map(([key, value]) => `${key}=${value}`)
    .join(" ");

/** How an event reads in one line: what happened, to what, with which value. */
export function describeEvent(event: WorkflowEvent): string {
  switch (event.type) {
    case "workflow_started":
      return `${event.workflowName}(${compactJson(event.input, 80).replace(/^\[|\]$/g, "")})${
        event.idempotencyKey ? ` key ${event.idempotencyKey}` : ""
      }${event.tags ? ` ${describeTags(event.tags)}` : ""}${
        event.workflowVersion ? ` version ${event.workflowVersion}` : ""
      }${event.continuedFrom ? ` continues ${event.continuedFrom}` : ""}`;
    case "patch_applied":
      return `patch "${event.patchId}": new code`;
    case "workflow_continued_as_new":
      return `continued as run ${event.continuedAs} with ${compactJson(event.input, 80)}`;
    case "tags_set":
      return describeTags(event.tags);
    case "workflow_completed":
      return `result ${compactJson(event.result, 80)}`;
    case "workflow_failed":
      return errorLine(event.error);
    case "workflow_suspended":
      return `waiting for ${event.waitingFor.join(", ") || "nothing"}`;
    case "workflow_resumed":
      return "";
    case "step_started":
      return `${event.stepId} attempt ${event.attempt}`;
    case "step_completed":
      return `${event.stepId} attempt ${event.attempt} → ${compactJson(event.result, 60)}`;
    case "step_failed":
      return `${event.stepId} attempt ${event.attempt}: ${errorLine(event.error)}`;
    case "step_retrying":
      return `${event.stepId} attempt ${event.attempt}: ${errorLine(event.error)}; attempt ${event.nextAttempt} in ${formatSpan(event.delayMs)}`;
    case "sleep_created":
      return `${event.sleepId} for ${formatSpan(event.durationMs)}, until ${formatTime(event.resumeAt)}`;
    case "sleep_completed":
      return event.sleepId;
    case "log_info":
    case "log_warning":
    case "log_error":
    case "log_debug":
      return event.data === undefined ? event.message : `${event.message} ${compactJson(event.data, 60)}`;
    case "cancel_requested":
    case "workflow_cancelled":
      return event.reason;
    case "workflow_retried":
      if (event.retriedFailures.length === 0) return "";
      return event.retriedFailures.length === 1
        ? `the step that failed at #${event.retriedFailures[0]} gets another attempt`
        : `the steps that failed at #${event.retriedFailures.join(", #")} get another attempt`;
    default:
      return describeUnknown(event);
  }
}

/**
 * Waits for events (hooks), child workflows, and event types added after this CLI was written (their own
 * fields, as JSON). Read by field name, so that this keeps working while those types evolve.
 */
function describeUnknown(event: unknown): string {
  const { runId: _runId, seq: _seq, timestamp: _timestamp, type, ...rest } = event as Record<string, unknown>;
  const text = (key: string) => String(rest[key] ?? "");
  switch (type) {
    case "hook_created":
      return `${text("hookId")} waits for "${text("eventName")}"${
        typeof rest.timeoutAt === "number" ? ` until ${formatTime(rest.timeoutAt)}` : ""
      }`;
    case "hook_received":
      return `${text("hookId")} received "${text("eventName")}" ${compactJson(rest.payload, 60)}`;
    case "hook_timed_out":
      return `${text("hookId")} timed out waiting for "${text("eventName")}"`;
    case "child_started":
      return `${text("childId")} started ${text("workflowName")} run ${text("childRunId")}`;
    case "child_completed":
      return `${text("childId")} (run ${text("childRunId")}) → ${compactJson(rest.result, 60)}`;
    case "child_failed":
      return `${text("childId")} (run ${text("childRunId")}): ${errorLine(rest.error as SerializedError | undefined)}`;
    default:
      break;
  }
  if (typeof rest.reason === "string") return rest.reason;
  return Object.keys(rest).length === 0 ? "" : compactJson(rest, 80);
}

/** The colour family of an event type: `ok`, `bad`, `warn` or `plain`. */
export function eventTone(type: string): "ok" | "bad" | "warn" | "plain" {
  if (type === "workflow_completed" || type === "step_completed") return "ok";
  if (type.endsWith("_failed") || type.endsWith("_timed_out") || type === "log_error") return "bad";
  if (type === "hook_received" || type === "child_completed") return "ok";
  if (
    type === "step_retrying" ||
    type === "log_warning" ||
    type.includes("cancel") ||
    type.includes("retried")
  )
    return "warn";
  return "plain";
}
