import { formatDuration } from "../core/durations.ts";
import type { WorkflowEvent } from "../core/events.ts";
import { waitsAfterRetry } from "../engine/retry-attempt.ts";
import { formatTime } from "../inspect/format.ts";
import type { RunRecord } from "../ports/event-store.ts";
import type { SlotStore } from "../ports/slot-store.ts";

/** Reads who holds a limit's slots: the backend's slot store, where it lives outside the app (Redis, DynamoDB). */
export type SlotReader = Pick<SlotStore, "inspect">;

/** What {@link waitingFor} knows besides the run's log. */
export interface WaitContext {
  /** Epoch ms: a timer due before it is overdue. */
  now: number;
  /**
   * Who takes runs on, as a sentence names it: `"an app"` (file backend), `"a worker"` (Redis), `"a deployment"`
   * (AWS).
   * @default "a worker"
   */
  runner?: string;
  /**
   * The backend's slots. With them, a pending run that holds its concurrency slot is said to wait for its start
   * under the rate limit only; without (the embedded runtime keeps its slots in the app's memory), both are named.
   */
  slots?: SlotReader;
}

/**
 * What the run waits for: while it is pending, the limits its `workflow_started` event records (its
 * concurrency slot, then its start within the rate limit) or code to start it; while it is suspended, what
 * the last `workflow_suspended` event says, and, once its timer is overdue, code to take it on (a run whose
 * workflow no process registers waits there).
 */
export async function waitingFor(
  run: RunRecord,
  events: readonly WorkflowEvent[],
  context: WaitContext,
): Promise<string[]> {
  const runner = `${context.runner ?? "a worker"} that registers ${codeOf(run)}`;
  if (run.status === "pending")
    return [(await limitsWaitedFor(run, events, context)) ?? `${runner} to start it`];
  if (run.status !== "suspended") return [];
  const suspended = events.findLast((event) => event.type === "workflow_suspended");
  if (suspended?.type !== "workflow_suspended") return [];
  const { resumeAt } = suspended;
  if (resumeAt === undefined || resumeAt > context.now) return suspended.waitingFor;
  return [...suspended.waitingFor, `${runner} to go on (its timer was due at ${formatTime(resumeAt)})`];
}

/** `workflow onboarding`, with the version the run started with. */
function codeOf(run: RunRecord): string {
  return `workflow ${run.workflowName}${run.workflowVersion === undefined ? "" : ` version ${JSON.stringify(run.workflowVersion)}`}`;
}

/**
 * The limits a pending run waits for: its slot, then its start under the rate limit (a retried run waits for
 * its slot only: its start is not counted again). Undefined for a run without limits.
 */
async function limitsWaitedFor(
  run: RunRecord,
  events: readonly WorkflowEvent[],
  context: WaitContext,
): Promise<string | undefined> {
  const started = events[0];
  if (started?.type !== "workflow_started") return undefined;
  const { concurrency } = started;
  const rateLimit = waitsAfterRetry(events) ? undefined : started.rateLimit;
  const slot =
    concurrency && !(await holdsSlot(run.runId, concurrency.key, context))
      ? `a run concurrency slot of key ${keyLabel(concurrency.key, run.workflowName)} (at most ${concurrency.limit} at once)`
      : undefined;
  const start =
    rateLimit &&
    `its start under rate limit ${keyLabel(rateLimit.key, run.workflowName)} (at most ${rateLimit.limit} per ${formatDuration(rateLimit.periodMs)})`;
  if (slot && start) return `${slot}, then ${start}`;
  return slot ?? start;
}

/** Whether the backend's slots say the run holds its slot (false when they cannot be read). */
async function holdsSlot(runId: string, key: string, { slots, now }: WaitContext): Promise<boolean> {
  if (!slots) return false;
  try {
    return (await slots.inspect(key, now)).holding.includes(runId);
  } catch {
    // Not knowing, the run is said to wait for both, as on a backend whose slots cannot be read.
    return false;
  }
}

/**
 * A run limit's key as a whole: a limit without a `key` function has the workflow's own key, `run:<name>:`,
 * shown as `run:<name>`.
 */
function keyLabel(key: string, workflowName: string): string {
  return key === `run:${workflowName}:` ? key.slice(0, -1) : key;
}
