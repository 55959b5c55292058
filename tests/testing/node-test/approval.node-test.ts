import assert from "node:assert/strict";
import { afterEach, beforeEach, it } from "node:test";
import { CancelledError } from "tsworkflow";
import { createTestEnvironment, type TestEnvironment } from "tsworkflow/testing";
import { approvalOrder, fulfil } from "../../../examples/approval.ts";

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

it("ships the order when the manager calls the emailed link", async () => {
  const run = await env.start(approvalOrder, ["order-1", "https://shop.example"]);
  assert.equal((await run.callWebhook(emails[0] as string, { approved: true, by: "ada" })).status, 202);
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

it("expires after three days without a decision", async () => {
  const run = await env.start(approvalOrder, ["order-3", "https://shop.example"]);
  assert.deepEqual(await run.result(), { orderId: "order-3", status: "expired" });
});

it("ends cancelled when the order is cancelled", async () => {
  const run = await env.start(approvalOrder, ["order-4", "https://shop.example"]);
  await run.cancel("customer changed their mind");
  await assert.rejects(run.result(), CancelledError);
});
