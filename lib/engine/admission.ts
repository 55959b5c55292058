import type { EventOf, WorkflowEvent } from "../core/events.ts";
import { checkLimits, limitKey } from "../core/rate-limit.ts";
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
 * @throws ConfigurationError when a key function throws or returns no string (nothing is stored)
 */
export function admissionOf(definition: AnyWorkflow, input: unknown[]): RunAdmission {
  const owner = `workflow("${definition.name}")`;
  const { concurrency, rateLimit: rate } = checkLimits(owner, definition.options);
  const keyOf = (option: "concurrency" | "rateLimit", key: ((...args: never[]) => unknown) | undefined) =>
    `run:${definition.name}:${limitKey(owner, option, key, input)}`;
  return {
    ...(concurrency
      ? { concurrency: { key: keyOf("concurrency", concurrency.key), limit: concurrency.limit } }
      : {}),
    ...(rate
      ? { rateLimit: { key: keyOf("rateLimit", rate.key), limit: rate.limit, periodMs: rate.periodMs } }
      : {}),
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
