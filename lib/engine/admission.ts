import type { EventOf, WorkflowEvent } from "../core/events.ts";
import { checkLimits } from "../core/rate-limit.ts";
import type { AnyWorkflow } from "../core/workflow.ts";

/** The concurrency a run is admitted under, as its `workflow_started` event records it. */
export type RunConcurrency = NonNullable<EventOf<"workflow_started">["concurrency"]>;
/** The start rate limit a run is admitted under, as its `workflow_started` event records it. */
export type RunRateLimit = NonNullable<EventOf<"workflow_started">["rateLimit"]>;
/** What a run waits for before it starts: its concurrency slot, then its start within the rate limit. */
export interface RunAdmission {
  concurrency?: RunConcurrency;
  rateLimit?: RunRateLimit;
}

/**
 * What a new run of `definition` with `input` will wait for before it starts: its keys, computed once
 * from its input, go into its `workflow_started` event.
 */
export function admissionOf(definition: AnyWorkflow, input: unknown[]): RunAdmission {
  const { concurrency, rateLimit: rate } = checkLimits(`workflow("${definition.name}")`, definition.options);
  const keyOf = (key: ((...args: never[]) => string) | undefined) =>
    `run:${definition.name}:${key ? String(key(...(structuredClone(input) as never[]))) : ""}`;
  return {
    ...(concurrency ? { concurrency: { key: keyOf(concurrency.key), limit: concurrency.limit } } : {}),
    ...(rate ? { rateLimit: { key: keyOf(rate.key), limit: rate.limit, periodMs: rate.periodMs } } : {}),
  };
}

/** The limits a run waits for before it starts, as its `workflow_started` event records them, if any. */
export function recordedAdmission(events: readonly WorkflowEvent[]): RunAdmission | undefined {
  const started = events[0];
  if (started?.type !== "workflow_started" || (!started.concurrency && !started.rateLimit)) return undefined;
  return {
    ...(started.concurrency ? { concurrency: started.concurrency } : {}),
    ...(started.rateLimit ? { rateLimit: started.rateLimit } : {}),
  };
}
