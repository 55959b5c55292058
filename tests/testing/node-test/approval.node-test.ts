/**
 * The approval tests of the README under Node's own test runner (no vitest):
 *   node --import tsx --test tests/testing/node-test/approval.node-test.ts
 * Run by tests/testing/node-test-runner.test.ts.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { CancelledError, configureLogging } from "tsworkflow";
import { createTestEnvironment, type TestEnvironment } from "tsworkflow/testing";
import { approvalOrder, fulfil, notifyRejected } from "../../../examples/approval.ts";

configureLogging({ level: "silent" });

describe("approval_order under node:test", () => {
  let env: TestEnvironment;
  const emails: string[] = [];

  beforeEach(async () => {
    emails.length = 0;
    env = await createTestEnvironment({
      timeSkipping: true,
      steps: {
        request_approval: async (orderId: string, url: string) => {
          emails.push(url);
          return { orderId, sentTo: "manager@example.com", url };
        },
      },
    });
  });
  afterEach(() => env.close());

  it("ships the order when the manager approves through the emailed link", async () => {
    const run = await env.start(approvalOrder, ["order-1", "https://shop.example"]);
    const response = await run.callWebhook(emails[0] as string, { approved: true, by: "ada" });

    assert.equal(response.status, 202);
    assert.deepEqual(await run.result(), {
      orderId: "order-1",
      status: "fulfilled",
      approvedBy: "ada",
      shipped: true,
    });
    assert.equal((await run.step(fulfil))?.attempts, 1);
  });

  it("rejects the order when the back office sends a rejection", async () => {
    const run = await env.start(approvalOrder, ["order-2", "https://shop.example"]);

    await run.sendEvent("approval", { approved: false, by: "bob" });

    assert.deepEqual(await run.result(), { orderId: "order-2", status: "rejected", rejectedBy: "bob" });
  });

  it("expires after three days without a decision, and not before", async () => {
    const run = await env.start(approvalOrder, ["order-3", "https://shop.example"]);

    await env.skip("2d");
    assert.equal(await run.status(), "suspended");
    await env.skip("1d");

    assert.deepEqual(await run.result(), { orderId: "order-3", status: "expired" });
    assert.ok((await run.events()).some((event) => event.type === "hook_timed_out"));
  });

  it("tells the customer when the order is cancelled, and ends cancelled", async () => {
    const run = await env.start(approvalOrder, ["order-4", "https://shop.example"]);

    await run.cancel("customer changed their mind");

    await assert.rejects(run.result(), CancelledError);
    assert.deepEqual((await run.step(notifyRejected))?.input, ["order-4", "the order was cancelled"]);
  });
});
