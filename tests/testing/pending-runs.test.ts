import { CancelledError, configureLogging } from "tsworkflow";
import { createTestEnvironment } from "tsworkflow/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pendingRunWorkflows } from "../support/pending-runs.ts";

/**
 * A run cancelled while it waits for its concurrency slot, in the test environment: it ends without its workflow
 * doing anything, and its log (its start, then its cancellation) passes the environment's replay check.
 */

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

describe("createTestEnvironment: a run cancelled before it began", () => {
  it("ends cancelled without running its steps or its finally, and replays", async () => {
    // Prepare: A holds the only slot; B waits for it.
    const calls: string[] = [];
    const env = await createTestEnvironment({ timeSkipping: true });
    const slotted = env.define(
      () =>
        pendingRunWorkflows("tpr", {
          ratePeriodMs: 1_000,
          maxDuration: "1h",
          onStep: (mark, label) => calls.push(`${mark} ${label}`),
        }).oneAtATime,
    );
    const a = await env.start(slotted, ["A"]);
    const b = await env.start(slotted, ["B"]);
    expect(await b.status()).toBe("pending");

    // Act
    await b.cancel("not needed");
    const error = await b.result().catch((caught: unknown) => caught);
    await a.sendEvent("go", null);
    await a.result();

    // Assess: close() would throw a ReplayMismatchError for a run whose log does not replay.
    expect(error).toBeInstanceOf(CancelledError);
    expect((await env.storage.getEvents(b.runId)).map((event) => event.type)).toEqual([
      "workflow_started",
      "cancel_requested",
      "workflow_cancelled",
    ]);
    expect(calls).toEqual(["charge A", "clean-up A"]);
    await expect(env.close()).resolves.toBeUndefined();
  });
});
