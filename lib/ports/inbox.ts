/**
 * A run's inbox: what reaches a run from outside its own steps (a cancellation request, an event sent to
 * it, a child run's result) is stored as a step outcome under a reserved id, so that it is durable and
 * idempotent in every store with no extra table. This module is the one place that knows those ids:
 * the engine and every adapter encode and read them here.
 */

/** What an outcome's id says it is. */
export type InboxEntry =
  | { kind: "step"; stepId: string }
  | { kind: "cancel" }
  /** A `sendEvent` delivery; its event name is in the outcome's result (`{ name, payload }`). */
  | { kind: "signal"; signalId: string }
  | { kind: "child"; childId: string };

const CANCEL = "$cancel";
const SIGNAL = "$signal:";
const CHILD = "$child:";

/**
 * The reserved outcome ids (always attempt 1).
 * @example
 * import { inboxIds } from "tsworkflow/engine";
 * const outcome = { runId, stepId: inboxIds.cancel, attempt: 1, recordedAt, ok: true, result: { reason: "stop" } };
 */
export const inboxIds = {
  /** The cancellation request of a run (one per run: a second request finds it stored). */
  cancel: CANCEL,
  /** An event delivery: the same `id` twice is one delivery. */
  signal: (eventName: string, id: string): string => `${SIGNAL}${eventName}:${id}`,
  /** The result of the child run a parent started as `childId`. */
  child: (childId: string): string => `${CHILD}${childId}`,
};

/**
 * Reads an outcome id: what a store or a queue needs to know of an outcome it holds.
 * @example
 * import { inboxIds, readInboxId } from "tsworkflow/engine";
 * readInboxId(inboxIds.child("charge#0")); // { kind: "child", childId: "charge#0" }
 * readInboxId("charge#0"); // { kind: "step", stepId: "charge#0" }
 */
export function readInboxId(stepId: string): InboxEntry {
  if (!isFromOutside(stepId)) return { kind: "step", stepId };
  if (stepId === CANCEL) return { kind: "cancel" };
  if (stepId.startsWith(CHILD)) return { kind: "child", childId: stepId.slice(CHILD.length) };
  return { kind: "signal", signalId: stepId };
}

/**
 * True for an outcome that came from outside the run (no step of the run has such an id).
 * @example
 * import { isFromOutside } from "tsworkflow/engine";
 * if (isFromOutside(task.cause.stepId)) console.log("a cancellation, an event or a child's result");
 */
export function isFromOutside(stepId: string): boolean {
  return stepId.startsWith("$");
}
