import type { StepOutcome } from "../ports/event-store.ts";
import { readInboxId } from "../ports/inbox.ts";
import { formatTime } from "./format.ts";

/** A request stored for the run that its log has not taken in yet, as `runs show` and the dashboard list it. */
export interface StoredRequest {
  kind: "cancel" | "event" | "child result" | "retry";
  description: string;
  /** When it was stored (ISO); absent for a retry. */
  storedAt?: string;
}

/** What `runs show` and the dashboard say after the requests: when they take effect. */
export const STORED_REQUESTS_NOTE = "(taken in when an app runs on the directory)";

/** The requests as one line: `a cancellation ("order withdrawn") since …, event "go" since …`. */
export const describeStoredRequests = (stored: readonly StoredRequest[]): string =>
  stored.map((request) => request.description).join(", ");

/**
 * The requests the file backend's inbox holds for the run and its log has not taken in (a cancellation or an
 * event sent with no app running, or a moment before the app takes it); none on the other backends, whose
 * workers take them at once.
 */
export async function storedRequestsOf(store: object, runId: string): Promise<StoredRequest[]> {
  const reader = store as {
    storedRequests?: (
      runId: string,
    ) => Promise<({ kind: "retry" } | { kind: "outcome"; outcome: StepOutcome })[]>;
  };
  if (typeof reader.storedRequests !== "function") return [];
  return (await reader.storedRequests(runId)).map((request): StoredRequest => {
    if (request.kind === "retry") return { kind: "retry", description: "a retry" };
    const { outcome } = request;
    const storedAt = outcome.recordedAt;
    const result = outcome.ok
      ? (outcome.result as { reason?: unknown; name?: unknown } | undefined)
      : undefined;
    const entry = readInboxId(outcome.stepId);
    if (entry.kind === "cancel") {
      const reason = result?.reason;
      return {
        kind: "cancel",
        description: `a cancellation${typeof reason === "string" ? ` ("${reason}")` : ""} since ${formatTime(storedAt)}`,
        storedAt,
      };
    }
    if (entry.kind === "child")
      return { kind: "child result", description: `the result of child ${entry.childId}`, storedAt };
    const name = result?.name;
    return {
      kind: "event",
      description: `event ${typeof name === "string" ? `"${name}"` : entry.kind === "signal" ? entry.signalId : "?"} since ${formatTime(storedAt)}`,
      storedAt,
    };
  });
}
