import {
  CancelledError,
  InvalidRunStateError,
  RunNotFoundError,
  type SerializedError,
  WorkflowInputError,
  WorkflowNotFoundError,
} from "../core/errors.ts";
import type { EventDraft, EventOf } from "../core/events.ts";
import { optional } from "../core/optional.ts";
import type { Registry } from "../core/registry.ts";
import { serializeError } from "../core/serialization.ts";
import type { RunTags } from "../core/tags.ts";
import type { AnyWorkflow } from "../core/workflow.ts";
import { type EventStore, FINISHED_STATUSES, type RunRecord } from "../ports/event-store.ts";
import { inboxIds } from "../ports/inbox.ts";
import type { StartOptions, StartResult } from "../ports/runtime.ts";
import type { ActivationTask } from "../ports/task-queue.ts";
import { continuationKeyOf, continuationRunIdOf } from "./continuation.ts";
import type { ChildWait, RunExecution } from "./execution.ts";

/**
 * The links between runs: a parent starts its children and gets their results through its inbox, a
 * cancelled parent cancels them, a run that continues as new starts the run that goes on. Every step
 * is idempotent, so an activation that died half-way does it again (see `redoAfterFinish`).
 */

/** How a child run knows its parent (set by the engine when a workflow calls `runChild`). */
export interface ChildLink {
  runId: string;
  childId: string;
  childRunId: string;
}

/** What starting a run takes besides the author's `StartOptions`. */
export interface LinkedStartOptions extends StartOptions {
  parent?: ChildLink;
  traceparent?: string | undefined;
  /** The run this one continues (`continueAsNew`): the new run's id follows from it. */
  continuedFrom?: string;
}

/** What the links need of the engine. */
export interface RunLinksHost {
  readonly store: EventStore;
  readonly registry: Registry;
  start(workflow: AnyWorkflow | string, args: unknown[], options: LinkedStartOptions): Promise<StartResult>;
  cancelRun(runId: string, reason: string): Promise<void>;
  enqueueActivation(task: ActivationTask): Promise<void>;
  /** A strictly increasing time for stored outcomes (see `Engine.recordedAt`). */
  recordedAt(): string;
}

/** Creates (once) the child run a parent's `child_started` names. */
export async function startChild(
  host: RunLinksHost,
  parent: RunExecution,
  child: ChildWait,
  traceparent?: string,
): Promise<void> {
  const link = { runId: parent.runId, childId: child.childId, childRunId: child.childRunId };
  let created: boolean;
  try {
    ({ created } = await host.start(child.workflowName, child.input, {
      idempotencyKey: `child:${child.childRunId}`,
      parent: link,
      ...optional("traceparent", traceparent),
    }));
  } catch (error) {
    // Input the child's workflow refuses fails the same way on every try: runChild() throws it instead.
    if (!(error instanceof WorkflowInputError)) throw error;
    return putChildOutcome(host, link.runId, link.childId, { ok: false, error: serializeError(error) });
  }
  if (created) return;
  // Started before: if it already finished and its parent missed the news (a crash), tell it again.
  const existing = await host.store.getRun(child.childRunId);
  if (existing && FINISHED_STATUSES.has(existing.status)) await notifyParentOf(host, existing, link);
}

export async function cancelChild(host: RunLinksHost, childRunId: string): Promise<void> {
  try {
    await host.cancelRun(childRunId, "its parent run was cancelled");
  } catch (error) {
    if (!(error instanceof InvalidRunStateError || error instanceof RunNotFoundError)) throw error;
  }
}

/**
 * Starts (once) the run that continues `runId` with the workflow's current code, the same tags and, for a
 * child run, the same parent: the end of the chain reports to it.
 */
export async function startContinuation(
  host: RunLinksHost,
  runId: string,
  started: EventOf<"workflow_started">,
  input: unknown[],
  tags: RunTags | undefined,
): Promise<void> {
  const definition = host.registry.findWorkflow(started.workflowName);
  if (!definition) throw new WorkflowNotFoundError(started.workflowName);
  const parent = started.parent;
  await host.start(definition, input, {
    idempotencyKey: continuationKeyOf(runId),
    continuedFrom: runId,
    ...(tags && Object.keys(tags).length > 0 ? { tags } : {}),
    ...(parent ? { parent: { ...parent, childRunId: continuationRunIdOf(runId) } } : {}),
    ...optional("traceparent", started.traceparent),
  });
}

/** A finished child run hands its result or error to its parent (a continued one leaves that to its chain's end). */
export async function notifyParent(
  host: RunLinksHost,
  execution: RunExecution,
  terminal: EventDraft,
): Promise<void> {
  const parent = execution.started.parent;
  if (!parent || terminal.type === "workflow_continued_as_new") return;
  const outcome = childOutcome(
    execution.runId,
    terminal.type === "workflow_completed",
    "result" in terminal ? terminal.result : undefined,
    "error" in terminal ? terminal.error : undefined,
  );
  await putChildOutcome(host, parent.runId, parent.childId, outcome);
}

/**
 * An activation of a finished run may be the redelivery of its last one, whose worker died between the
 * final commit and what follows it: do that again (each part is idempotent). A child run tells its
 * parent; a cancelled run cancels the children it was still waiting for.
 */
export async function redoAfterFinish(host: RunLinksHost, run: RunRecord): Promise<void> {
  const isChild =
    (run.idempotencyKey?.startsWith("child:") || run.idempotencyKey?.startsWith("continue:")) ?? false;
  if (!isChild && run.status !== "cancelled" && run.status !== "continued") return;
  const events = await host.store.getEvents(run.runId);
  const [started] = events;
  if (run.status === "continued") {
    const last = events.findLast((event) => event.type === "workflow_continued_as_new");
    if (started?.type === "workflow_started" && last?.type === "workflow_continued_as_new")
      await startContinuation(host, run.runId, started, last.input, run.tags);
    return;
  }
  const parent = isChild && started?.type === "workflow_started" ? started.parent : undefined;
  if (parent) await notifyParentOf(host, run, { ...parent, childRunId: run.runId });
  if (run.status !== "cancelled") return;
  const ended = new Set<string>();
  for (const event of events)
    if (event.type === "child_completed" || event.type === "child_failed") ended.add(event.childRunId);
  const waitedFor = events.flatMap((event) =>
    event.type === "child_started" && !ended.has(event.childRunId) ? [event.childRunId] : [],
  );
  await Promise.all(waitedFor.map((childRunId) => cancelChild(host, childRunId)));
}

export async function notifyParentOf(host: RunLinksHost, child: RunRecord, link: ChildLink): Promise<void> {
  const outcome = childOutcome(child.runId, child.status === "completed", child.result, child.error);
  await putChildOutcome(host, link.runId, link.childId, outcome);
}

/** What a finished child hands its parent: its result, its error, or a `CancelledError`. */
function childOutcome(
  childRunId: string,
  completed: boolean,
  result: unknown,
  error: SerializedError | undefined,
): { ok: true; result: unknown } | { ok: false; error: SerializedError } {
  if (completed) return { ok: true, result: result ?? null };
  return {
    ok: false,
    error: error ?? serializeError(new CancelledError(`Child run ${childRunId} was cancelled`)),
  };
}

/**
 * True when a finished child run's parent no longer needs to hear of it (the sweepers ask): the run has no
 * parent, the parent is gone or finished, or its log has applied the child's result. Matched by child id, so
 * the result of a continuation of the child (`continueAsNew`) counts.
 */
export async function parentHeardOf(store: EventStore, childRunId: string): Promise<boolean> {
  const [started] = await store.getEvents(childRunId);
  const link = started?.type === "workflow_started" ? started.parent : undefined;
  if (!link) return true;
  const parent = await store.getRun(link.runId);
  if (!parent || FINISHED_STATUSES.has(parent.status)) return true;
  const events = await store.getEvents(link.runId);
  return events.some(
    (event) =>
      (event.type === "child_completed" || event.type === "child_failed") && event.childId === link.childId,
  );
}

export async function putChildOutcome(
  host: RunLinksHost,
  parentRunId: string,
  childId: string,
  outcome: { ok: true; result: unknown } | { ok: false; error: SerializedError },
): Promise<void> {
  const stepId = inboxIds.child(childId);
  const recordedAt = host.recordedAt();
  await host.store.putOutcome({ runId: parentRunId, stepId, attempt: 1, recordedAt, ...outcome });
  await host.enqueueActivation({
    runId: parentRunId,
    cause: { kind: "outcome", stepId, attempt: 1 },
  });
}
