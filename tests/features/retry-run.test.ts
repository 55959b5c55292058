import { FatalError, InvalidRunStateError, step, workflow } from "tsworkflow";
import { afterEach, describe, expect, it } from "vitest";
import { virtualRuntime } from "./support.ts";

let declined = true;
const runs: string[] = [];
const reserve = step("rr_reserve", async () => {
  runs.push("reserve");
  return "reserved";
});
const charge = step("rr_charge", async () => {
  runs.push("charge");
  if (declined) throw new FatalError("card declined");
  return "charged";
});
const order = workflow("rr_order", async () => [await reserve(), await charge()]);

describe("retryRun", () => {
  let env: ReturnType<typeof virtualRuntime>;
  afterEach(() => env.close());

  it("goes on from the failed step without running completed steps again", async () => {
    // Prepare
    env = virtualRuntime();
    const { runId } = await env.runtime.start(order, []);
    await env.settle();
    expect(await env.run(runId)).toMatchObject({ status: "failed", error: { name: "FatalError" } });

    // Act
    declined = false;
    await env.runtime.retryRun(runId);
    await env.settle();

    // Assess
    const run = await env.run(runId);
    expect(run).toMatchObject({ status: "completed", result: ["reserved", "charged"] });
    expect(run.error).toBeUndefined();
    expect(runs).toEqual(["reserve", "charge", "charge"]);
    const tail = (await env.storage.getEvents(runId))
      .slice(-5)
      .map((event) => [event.type, "attempt" in event ? event.attempt : ""]);
    expect(tail).toEqual([
      ["workflow_failed", ""],
      ["workflow_retried", ""],
      ["step_started", 2],
      ["step_completed", 2],
      ["workflow_completed", ""],
    ]);
  });

  it("refuses to retry a run whose workflow caught the step's failure and went on, leaving the run as it was", async () => {
    // Prepare: a saga that refunds when the charge fails, then fails itself
    env = virtualRuntime();
    declined = true;
    const refund = step("rr_refund", async () => "refunded");
    const saga = workflow("rr_saga", async () => {
      await reserve();
      try {
        return await charge();
      } catch (error) {
        await refund();
        throw error;
      }
    });
    const { runId } = await env.runtime.start(saga, []);
    await env.settle();
    const before = await env.storage.getEvents(runId);

    // Act
    declined = false;
    const retry = env.runtime.retryRun(runId);

    // Assess
    await expect(retry).rejects.toMatchObject({
      name: "InvalidRunStateError",
      message: expect.stringMatching(
        /caught the failure of step "rr_charge" \(event #\d+\) and went on to step "rr_refund" \(rr_refund#0\) \(event #\d+\).*Start a new run instead/,
      ),
    });
    expect(await env.run(runId)).toMatchObject({ status: "failed", error: { name: "FatalError" } });
    expect(await env.storage.getEvents(runId)).toEqual(before);
  });

  it("refuses to retry a run that has not failed", async () => {
    env = virtualRuntime();
    declined = false;
    const { runId } = await env.runtime.start(order, []);
    await env.settle();

    await expect(env.runtime.retryRun(runId)).rejects.toBeInstanceOf(InvalidRunStateError);
  });
});
