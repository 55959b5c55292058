import { CancelledError, FatalError, step, type WorkflowEvent, workflow } from "tsworkflow";
import { replayHistory } from "tsworkflow/testing";
import { describe, expect, it } from "vitest";
import { Registry } from "../../lib/core/registry.ts";

/**
 * The log of a run cancelled before it began (a new run in line for its slot, or a failed run that retryRun put
 * back in line) holds its cancellation right after its start or its retry: its workflow did nothing after
 * that, and a replay stops there instead of running the workflow's clean-up against the log.
 */

const T0 = Date.parse("2030-01-01T00:00:00.000Z");
const at = (time: number) => new Date(time).toISOString();

const saga = new Registry().define(() => {
  const charge = step("cbb_charge", async (order: string) => order);
  const refund = step("cbb_refund", async (order: string) => order);
  return workflow(
    "cbb_saga",
    async (order: string) => {
      try {
        return await charge(order);
      } catch (error) {
        if (error instanceof CancelledError) await refund(order);
        throw error;
      }
    },
    { concurrency: { limit: 1 } },
  );
});

const event = (seq: number, time: number, fields: Record<string, unknown>) =>
  ({ runId: "run_cbb", seq, timestamp: at(time), ...fields }) as WorkflowEvent;
const start = event(1, T0, { type: "workflow_started", workflowName: "cbb_saga", input: ["o-1"] });
const cancellation = (seq: number, time: number) => [
  event(seq, time, { type: "cancel_requested", reason: "not needed" }),
  event(seq + 1, time, { type: "workflow_cancelled", reason: "not needed" }),
];

describe("replayHistory of a run cancelled before it began", () => {
  it("replays a new run cancelled in line: its start, then its cancellation", async () => {
    // Act
    const report = await replayHistory(saga, [start, ...cancellation(2, T0 + 1_000)]);

    // Assess
    expect(report).toEqual({ ok: true, runId: "run_cbb", workflowName: "cbb_saga", events: 3 });
  });

  it("replays a failed run cancelled while retryRun had put it back in line, without its clean-up", async () => {
    // Prepare
    const error = new FatalError("declined");
    const failure = { name: error.name, message: error.message, code: error.code };
    const log = [
      start,
      event(2, T0, {
        type: "step_started",
        stepId: "cbb_charge#0",
        stepName: "cbb_charge",
        attempt: 1,
        input: ["o-1"],
      }),
      event(3, T0, {
        type: "step_failed",
        stepId: "cbb_charge#0",
        stepName: "cbb_charge",
        attempt: 1,
        error: failure,
      }),
      event(4, T0, { type: "workflow_failed", error: failure }),
      event(5, T0 + 1_000, { type: "workflow_retried", retriedFailures: [3] }),
      ...cancellation(6, T0 + 2_000),
    ];

    // Act
    const report = await replayHistory(saga, log);

    // Assess
    expect(report).toEqual({ ok: true, runId: "run_cbb", workflowName: "cbb_saga", events: 7 });
  });
});
