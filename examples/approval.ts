/**
 * An order that waits for a manager's approval, with a timeout: the run creates a one-time webhook,
 * "emails" its URL to the manager, and waits with no process held until the manager's HTTP call, a
 * decision from the back office (`sendEvent(runId, "approval", { approved, by })`), or three days, whichever
 * comes first. Cancelled meanwhile, it tells the customer before it ends.
 *
 *   npx tsx examples/approval.ts          # starts a webhook server, and plays the manager with fetch()
 *
 * tests/testing/approval.test.ts tests it with the test environment (the README's Testing section).
 */
import { CancelledError, createWebhook, log, step, TimeoutError, waitForEvent, workflow } from "tsworkflow";
import { z } from "zod";

const decision = z.object({ approved: z.boolean(), by: z.string() });

export const requestApproval = step("request_approval", async (orderId: string, url: string) => {
  // A real step would email or message the manager the URL.
  return { orderId, sentTo: "manager@example.com", url };
});
export const fulfil = step("fulfil_order", async (orderId: string) => ({ orderId, shipped: true }));
export const notifyRejected = step("notify_rejected", async (orderId: string, reason: string) => ({
  orderId,
  reason,
}));

/** How an approval ends, when it does not fail or get cancelled. */
export type ApprovalResult =
  | { orderId: string; status: "fulfilled"; approvedBy: string; shipped: boolean }
  | { orderId: string; status: "rejected"; rejectedBy: string }
  | { orderId: string; status: "expired" };

export const approvalOrder = workflow(
  "approval_order",
  async (orderId: string, baseUrl: string): Promise<ApprovalResult> => {
    const hook = createWebhook({ timeout: "3d", schema: decision });
    await requestApproval(orderId, `${baseUrl}${hook.path}`);
    try {
      // The manager's call to the webhook, or the back office's event: the first one decides.
      const { approved, by } = await Promise.race([
        hook.wait(),
        waitForEvent("approval", { schema: decision }),
      ]);
      log.info("manager decided", { approved, by });
      if (approved) {
        const { shipped } = await fulfil(orderId);
        return { orderId, status: "fulfilled", approvedBy: by, shipped };
      }
      await notifyRejected(orderId, `rejected by ${by}`);
      return { orderId, status: "rejected", rejectedBy: by };
    } catch (error) {
      if (error instanceof TimeoutError) {
        await notifyRejected(orderId, "no decision within 3 days");
        return { orderId, status: "expired" };
      }
      // A cancelled run may still call steps before it ends.
      if (error instanceof CancelledError) await notifyRejected(orderId, "the order was cancelled");
      throw error;
    }
  },
  { maxDuration: "7d" },
);

if (import.meta.url === `file://${process.argv[1]}`) {
  const { getEvents, getRuntime, shutdown, start, waitForRun } = await import("tsworkflow");
  const { LocalRuntime, serveWebhooks } = await import("tsworkflow/local");
  const runtime = await getRuntime();
  if (!(runtime instanceof LocalRuntime)) throw new Error("this example runs on the embedded runtime");
  const server = await serveWebhooks({ runtime, store: runtime.storage });
  const runId = await start(approvalOrder, ["order-7", server.url]);

  // Play the manager: find the URL the run sent out, and approve.
  let url: string | undefined;
  while (!url) {
    const sent = (await getEvents(runId)).find((event) => event.type === "step_completed");
    url = sent?.type === "step_completed" ? (sent.result as { url: string }).url : undefined;
    if (!url) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(`the manager receives ${url}`);
  const response = await fetch(url, {
    method: "POST",
    body: JSON.stringify({ approved: true, by: "ada@example.com" }),
  });
  console.log(`POST → ${response.status} ${await response.text()}`);
  const again = await fetch(url, {
    method: "POST",
    body: JSON.stringify({ approved: false, by: "mallory" }),
  });
  console.log(`the same call again → ${again.status} ${await again.text()}`);
  const run = await waitForRun(runId);
  console.log(`${run.status}: ${JSON.stringify(run.result)}`);
  await server.close();
  await shutdown();
}
