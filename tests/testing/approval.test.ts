import { CancelledError, FatalError } from "tsworkflow";
import { createTestEnvironment, type TestEnvironment } from "tsworkflow/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { approvalOrder, fulfil, notifyRejected, requestApproval } from "../../examples/approval.ts";

describe("approval_order", () => {
  let env: TestEnvironment;
  const emails: string[] = [];

  beforeEach(async () => {
    emails.length = 0;
    env = await createTestEnvironment({
      timeSkipping: true, // result() lets the 3-day timeout pass at once
      steps: {
        // A fake for this environment only: the manager's email is kept here instead of sent.
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
    expect(await run.status()).toBe("suspended"); // waiting for the manager

    const url = emails[0] as string; // the link the manager received
    expect(url).toMatch(/^https:\/\/shop\.example\/hooks\//);
    const response = await run.callWebhook(url, { approved: true, by: "ada" });

    expect(response.status).toBe(202);
    expect(await run.result()).toEqual({
      orderId: "order-1",
      status: "fulfilled",
      approvedBy: "ada",
      shipped: true,
    });
    expect(await run.step(fulfil)).toMatchObject({ status: "completed", attempts: 1 });
    expect((await run.callWebhook(url, { approved: false, by: "eve" })).status).toBe(409); // works once
  });

  it("rejects the order when the back office sends a rejection", async () => {
    const run = await env.start(approvalOrder, ["order-2", "https://shop.example"]);

    await run.sendEvent("approval", { approved: false, by: "bob" });

    expect(await run.result()).toEqual({ orderId: "order-2", status: "rejected", rejectedBy: "bob" });
    expect(await run.step(notifyRejected)).toMatchObject({ input: ["order-2", "rejected by bob"] });
  });

  it("expires after three days without a decision, and not before", async () => {
    const run = await env.start(approvalOrder, ["order-3", "https://shop.example"]);

    await env.skip("2d");
    expect(await run.status()).toBe("suspended");
    await env.skip("1d");

    expect(await run.status()).toBe("completed");
    expect(await run.result()).toEqual({ orderId: "order-3", status: "expired" });
    expect(await run.events()).toContainEqual(expect.objectContaining({ type: "hook_timed_out" }));
    expect(await run.step(notifyRejected)).toMatchObject({ input: ["order-3", "no decision within 3 days"] });
  });

  it("tells the customer when the order is cancelled, and ends cancelled", async () => {
    const run = await env.start(approvalOrder, ["order-4", "https://shop.example"]);

    await run.cancel("customer changed their mind");

    expect(await run.status()).toBe("cancelled");
    await expect(run.result()).rejects.toThrow(CancelledError);
    expect(await run.step(notifyRejected)).toMatchObject({ input: ["order-4", "the order was cancelled"] });
  });

  it("fails the run when fulfilment fails for good", async () => {
    env.fakeStep(fulfil, async () => {
      throw new FatalError("out of stock");
    });
    const run = await env.start(approvalOrder, ["order-5", "https://shop.example"]);

    await run.sendEvent("approval", { approved: true, by: "ada" });

    await expect(run.result()).rejects.toThrow("out of stock");
    expect(await run.steps()).toMatchObject([
      { name: requestApproval.stepName, status: "completed" },
      { name: "fulfil_order", status: "failed", attempts: 1, error: { name: "FatalError" } },
    ]);
  });
});
