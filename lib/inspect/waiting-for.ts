import { formatDuration } from "../core/durations.ts";
import type { WorkflowEvent } from "../core/events.ts";
import type { RunConcurrency } from "../engine/admission.ts";
import { waitsAfterRetry } from "../engine/retry-attempt.ts";
import type { RunRecord } from "../ports/event-store.ts";
import type { SlotStore } from "../ports/slot-store.ts";
import { formatTime } from "./format.ts";

/** Reads who holds a limit's slots: the backend's slot store, where it lives outside the app (Redis, DynamoDB). */
export type SlotReader = Pick<SlotStore, "inspect">;

/** What {@link waitingFor} knows besides the run's log. */
export interface WaitContext {
  /**
   * Epoch ms: a suspended run whose timer was due before it is said to wait for code to go on.
   * @default not looked at
   */
  now?: number;
  /**
   * Who takes runs on, as a sentence names it: `"an app"` (file backend), `"a worker"` (Redis), `"a deployment"`
   * (AWS).
   * @default "a worker"
   */
  runner?: string;
  /**
   * Whether a pending run holds its concurrency slot (read from the slots: {@link readWaitingFor}). When it does,
   * it waits for its start under the rate limit only; not known, both are named.
   * @default not known
   */
  holdsSlot?: boolean;
}

/**
 * What the run waits for: while it is pending, the limits its `workflow_started` event records (its
 * concurrency slot, then its start within the rate limit) or code to start it; while it is suspended, what
 * the last `workflow_suspended` event says, and, once its timer is overdue, code to take it on (a run whose
 * workflow no process registers waits there).
 */
export function waitingFor(
  run: RunRecord,
  events: readonly WorkflowEvent[],
  context: WaitContext = {},
): string[] {
  const runner = `${context.runner ?? "a worker"} that registers ${codeOf(run)}`;
  if (run.status === "pending") return [limitsWaitedFor(events, context) ?? `${runner} to start it`];
  if (run.status !== "suspended") return [];
  const suspended = events.findLast((event) => event.type === "workflow_suspended");
  if (suspended?.type !== "workflow_suspended") return [];
  const { resumeAt } = suspended;
  if (resumeAt === undefined || context.now === undefined || resumeAt > context.now)
    return suspended.waitingFor;
  return [...suspended.waitingFor, `${runner} to go on (its timer was due at ${formatTime(resumeAt)})`];
}

/**
 * {@link waitingFor}, with `slots` read first for whether a pending run holds its concurrency slot (not known
 * without them, or when they cannot be read).
 */
export async function readWaitingFor(
  run: RunRecord,
  events: readonly WorkflowEvent[],
  context: WaitContext & { slots?: SlotReader | undefined; now: number },
): Promise<string[]> {
  const { slots, ...rest } = context;
  const concurrency = run.status === "pending" ? concurrencyOf(events) : undefined;
  if (!slots || !concurrency) return waitingFor(run, events, rest);
  try {
    const { holding } = await slots.inspect(concurrency.key, context.now);
    return waitingFor(run, events, { ...rest, holdsSlot: holding.includes(run.runId) });
  } catch {
    return waitingFor(run, events, rest);
  }
}

/** `a run concurrency slot of key run:sync_account:acme (at most 1 at once)` */
export function slotReason({ key, limit }: RunConcurrency): string {
  return `a run concurrency slot of key ${keyLabel(key)} (at most ${limit} at once)`;
}

/** `workflow onboarding`, with the version the run started with. */
function codeOf(run: RunRecord): string {
  return `workflow ${run.workflowName}${run.workflowVersion === undefined ? "" : ` version ${JSON.stringify(run.workflowVersion)}`}`;
}

function concurrencyOf(events: readonly WorkflowEvent[]): RunConcurrency | undefined {
  const started = events[0];
  return started?.type === "workflow_started" ? started.concurrency : undefined;
}

/**
 * The limits a pending run waits for: its slot (unless it holds it), then its start under the rate limit (a
 * retried run waits for its slot only: its start is not counted again). Undefined for a run without limits.
 */
function limitsWaitedFor(events: readonly WorkflowEvent[], { holdsSlot }: WaitContext): string | undefined {
  const started = events[0];
  if (started?.type !== "workflow_started") return undefined;
  const slot = started.concurrency && !holdsSlot ? slotReason(started.concurrency) : undefined;
  const rateLimit = waitsAfterRetry(events) ? undefined : started.rateLimit;
  const start =
    rateLimit &&
    `its start under rate limit ${keyLabel(rateLimit.key)} (at most ${rateLimit.limit} per ${formatDuration(rateLimit.periodMs)})`;
  if (slot && start) return `${slot}, then ${start}`;
  return slot ?? start;
}

/**
 * A run limit's key as a whole: a limit without a `key` function has the workflow's own key, `run:<name>:`,
 * shown as `run:<name>`. (A `key` function's value that ends with ":" loses that colon here, in the text only.)
 */
function keyLabel(key: string): string {
  return key.endsWith(":") ? key.slice(0, -1) : key;
}
