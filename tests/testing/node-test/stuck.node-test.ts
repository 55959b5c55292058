/**
 * Tests that fail on purpose under node:test, to show what its output says: why the run does not end, and
 * its timeline. Run by tests/testing/node-test-runner.test.ts, which expects them to fail.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { configureLogging, waitForEvent, workflow } from "tsworkflow";
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

// node:test has no timeout of its own: a result() that never settled would hang the whole run.
it("expects a result from a run pending behind a run that waits for an event", {
  timeout: 20_000,
}, async () => {
  const env = await createTestEnvironment({ timeSkipping: true });
  try {
    const sync = env.define(() =>
      workflow(
        "account_sync",
        async (account: string) => {
          await waitForEvent("go");
          return account;
        },
        { concurrency: { limit: 1, key: (account) => account } },
      ),
    );
    await env.start(sync, ["acme"]);
    const pending = await env.start(sync, ["acme"]);
    assert.equal(await pending.result(), "acme");
  } finally {
    await env.close();
  }
});
