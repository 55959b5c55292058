/**
 * A test that fails on purpose under node:test, to show what its output says: the run's timeline.
 * Run by tests/testing/node-test-runner.test.ts, which expects it to fail.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { configureLogging } from "tsworkflow";
import { createTestEnvironment } from "tsworkflow/testing";
import { approvalOrder } from "../../../examples/approval.ts";

configureLogging({ level: "silent" });

it("expects a result from a run that waits for the manager", async () => {
  const env = await createTestEnvironment();
  try {
    const run = await env.start(approvalOrder, ["order-stuck", "https://shop.example"]);
    assert.equal((await run.result()).status, "fulfilled");
  } finally {
    await env.close();
  }
});
