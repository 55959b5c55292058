import { getStepInfo, RetryableError, sleep, step, type WorkflowEvent, workflow } from "tsworkflow";

/** How many times each step function ran, by `<runId>:<stepId>` (steps run in this process on every backend). */
export const executions = new Map<string, number>();

const counted = <T>(value: T): T => {
  const info = getStepInfo();
  if (info) {
    const key = `${info.runId}:${info.stepId}`;
    executions.set(key, (executions.get(key) ?? 0) + 1);
  }
  return value;
};

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const first = step("cm_first", async (order: string) => counted(`first(${order})`));
const left = step("cm_left", async (value: string) => {
  await pause(5);
  return counted(`left(${value})`);
});
const right = step("cm_right", async (value: string) => counted(`right(${value})`));
const last = step("cm_last", async (a: string, b: string) => counted(`last(${a}, ${b})`));

/** A sequential step, a Promise.all of two steps, a durable sleep, and a step after it. */
export const crashFlow = workflow("cm_flow", async (order: string) => {
  const a = await first(order);
  const [b, c] = await Promise.all([left(a), right(a)]);
  await sleep("150ms");
  return last(b, c);
});

export const CRASH_FLOW_STEPS = ["cm_first#0", "cm_left#0", "cm_right#0", "cm_last#0"];

const flaky = step("cm_flaky", async (order: string, retryAfterMs: number) => {
  if (getStepInfo()?.attempt === 1) {
    counted(null);
    throw new RetryableError("the first attempt fails", { retryAfter: retryAfterMs });
  }
  return counted(`flaky(${order})`);
});

/**
 * A step whose first attempt fails and is retried after `retryAfterMs` (longer than a redelivery
 * takes, so that a redelivered activation finds the retry not yet due), between two steps.
 */
export const retryFlow = workflow("cm_retry_flow", async (order: string, retryAfterMs: number) => {
  const a = await first(order);
  const b = await flaky(a, retryAfterMs);
  return last(a, b);
});

/** `[type, stepId | sleepId, attempt]` of each event. */
export function tuples(events: readonly WorkflowEvent[]): (string | number)[][] {
  return events.map((event) => {
    if ("stepId" in event) return [event.type, event.stepId, event.attempt];
    if ("sleepId" in event) return [event.type, event.sleepId];
    return [event.type];
  });
}

const OUTCOME_TYPES = new Set(["step_completed", "step_failed", "step_retrying"]);

/**
 * The tuples with each block of consecutive step outcomes sorted: concurrent steps (a `Promise.all`)
 * may finish in either order, and the log keeps the order in which their results arrived.
 */
export function canonicalTuples(events: readonly WorkflowEvent[]): string[] {
  const out: string[] = [];
  let block: string[] = [];
  const flush = () => {
    out.push(...block.sort());
    block = [];
  };
  for (const tuple of tuples(events)) {
    const text = JSON.stringify(tuple);
    if (OUTCOME_TYPES.has(String(tuple[0]))) block.push(text);
    else {
      flush();
      out.push(text);
    }
  }
  flush();
  return out;
}

/** Step ids with how many `step_completed` events each has. */
export function completionsPerStep(events: readonly WorkflowEvent[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const event of events)
    if (event.type === "step_completed") counts[event.stepId] = (counts[event.stepId] ?? 0) + 1;
  return counts;
}
