import type { Duration } from "../../lib/core/durations.ts";
import { sleep, waitForEvent } from "../../lib/core/primitives.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";

/** What a step of {@link pendingRunWorkflows} did, for `label`. */
export type StepMark = "charge" | "clean-up";

/**
 * The workflows of the pending-runs tests on each backend (tests/features, tests/redis, tests/aws), named
 * `<prefix>_…`. Their steps tell `onStep` what they do (it may throw: the step fails with its error), as a
 * saga's charge and its clean-up would.
 */
export function pendingRunWorkflows(
  prefix: string,
  options: { ratePeriodMs: number; maxDuration: Duration; onStep: (mark: StepMark, label: string) => void },
) {
  const { onStep } = options;
  const charge = step(`${prefix}_charge`, async (label: string) => {
    onStep("charge", label);
    return label;
  });
  const cleanUp = step(`${prefix}_clean_up`, async (label: string) => {
    onStep("clean-up", label);
    return label;
  });
  return {
    charge,
    cleanUp,
    /** One at a time: charges, holds the slot until its "go", and cleans up in `finally`. */
    oneAtATime: workflow(
      `${prefix}_one_at_a_time`,
      async (label: string) => {
        try {
          await charge(label);
          await waitForEvent("go");
          return label;
        } finally {
          await cleanUp(label);
        }
      },
      { concurrency: { limit: 1 } },
    ),
    /** One start per `ratePeriodMs`, with the same clean-up. */
    rated: workflow(
      `${prefix}_rated`,
      async (label: string) => {
        try {
          return await charge(label);
        } finally {
          await cleanUp(label);
        }
      },
      { rateLimit: { limit: 1, period: options.ratePeriodMs } },
    ),
    /** One at a time within `maxDuration`: charges, then sleeps `ms`. */
    quick: workflow(
      `${prefix}_quick`,
      async (label: string, ms: number) => {
        await charge(label);
        await sleep(ms);
        return label;
      },
      { concurrency: { limit: 1 }, maxDuration: options.maxDuration },
    ),
  };
}
