import { LocalRuntime, MemoryStorage, serveWebhooks } from "tsworkflow/local";
import { describe, expect, it } from "vitest";
import { approvalOrder } from "../../examples/approval.ts";
import { virtualRuntime } from "./support.ts";

async function sentUrl(runtime: LocalRuntime, runId: string): Promise<string> {
  for (;;) {
    const sent = (await runtime.getEvents(runId)).find((event) => event.type === "step_completed");
    if (sent?.type === "step_completed") return (sent.result as { url: string }).url;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("examples/approval.ts", () => {
  it("is approved by a real HTTP call to the local webhook endpoint, which works once", async () => {
    // Prepare
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const server = await serveWebhooks({ runtime, store: runtime.storage });
    const { runId } = await runtime.start(approvalOrder, ["order-1", server.url]);
    const url = await sentUrl(runtime, runId);

    // Act
    const approve = await fetch(url, { method: "POST", body: JSON.stringify({ approved: true, by: "ada" }) });
    const replay = await fetch(url, {
      method: "POST",
      body: JSON.stringify({ approved: false, by: "mallory" }),
    });
    const forged = await fetch(`${url}x`, { method: "POST", body: "{}" });
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });

    // Assess
    expect([approve.status, replay.status, forged.status]).toEqual([202, 409, 404]);
    expect(run).toMatchObject({
      status: "completed",
      result: { orderId: "order-1", status: "fulfilled", approvedBy: "ada" },
    });
    const types = (await runtime.getEvents(runId)).map((event) => event.type);
    expect(types).toEqual([
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
    await runtime.close();
  });

  it("expires after three days without a decision", async () => {
    const env = virtualRuntime();
    const { runId } = await env.runtime.start(approvalOrder, ["order-2", "http://127.0.0.1:1"]);
    await env.settle();

    await env.advance(3 * 86_400_000);

    expect(await env.run(runId)).toMatchObject({ status: "completed", result: { status: "expired" } });
    expect(await env.types(runId)).toContain("hook_timed_out");
    await env.close();
  });
});
