import { serveWebhooks } from "tsworkflow/local";
import { createTestEnvironment } from "tsworkflow/testing";
import { describe, expect, it } from "vitest";
import { approvalOrder, requestApproval } from "../../examples/approval.ts";

describe("examples/approval.ts", () => {
  it("is approved by a real HTTP call to the local webhook endpoint, which works once", async () => {
    // Prepare
    const env = await createTestEnvironment();
    const server = await serveWebhooks({ runtime: env.runtime, store: env.storage });
    const run = await env.start(approvalOrder, ["order-1", server.url]);
    const url = (await run.step(requestApproval))?.result?.url as string;

    // Act
    const approve = await fetch(url, { method: "POST", body: JSON.stringify({ approved: true, by: "ada" }) });
    const replay = await fetch(url, {
      method: "POST",
      body: JSON.stringify({ approved: false, by: "mallory" }),
    });
    const forged = await fetch(`${url}x`, { method: "POST", body: "{}" });

    // Assess
    expect(url.startsWith(`${server.url}/hooks/`)).toBe(true);
    expect([approve.status, replay.status, forged.status]).toEqual([202, 409, 404]);
    expect(await run.result()).toEqual({
      orderId: "order-1",
      status: "fulfilled",
      approvedBy: "ada",
      shipped: true,
    });
    expect((await run.events()).map((event) => event.type)).toEqual([
      "workflow_started",
      "hook_created",
      "step_started",
      "step_completed",
      "hook_created",
      "workflow_suspended",
      "workflow_resumed",
      "hook_received",
      "log_info",
      "step_started",
      "step_completed",
      "workflow_completed",
    ]);
    await server.close();
    await env.close();
  });
});
