/**
 * Emails to many users, kindly: at most 5 emails per second per tenant (the mail provider's quota), at
 * most 3 emails being sent at once over every tenant (the SMTP connection pool), and one campaign per
 * tenant at a time. Excess work waits its turn; nothing is dropped or failed.
 *
 *   npx tsx examples/rate-limited.ts
 */
import { map, step, workflow } from "tsworkflow";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";

export const sendEmail = step(
  "send_campaign_email",
  async (tenant: string, user: string) => {
    await new Promise((resolve) => setTimeout(resolve, 20)); // the SMTP round trip
    return `${tenant}: sent to ${user}`;
  },
  {
    // 5 starts per second per tenant, counted over a sliding window.
    rateLimit: { limit: 5, period: "1s", key: (tenant) => tenant },
    // 3 copies at once over all tenants, across every worker.
    concurrency: { limit: 3 },
  },
);

export const campaign = workflow(
  "email_campaign",
  async (tenant: string, users: string[]) => {
    // All emails are asked for at once; the limits above decide when each goes.
    const sent = await map(users, (user) => sendEmail(tenant, user), { concurrency: users.length });
    return sent.length;
  },
  // A second campaign of the same tenant stays pending until the first one ends.
  { concurrency: { limit: 1, key: (tenant) => tenant } },
);

if (import.meta.url === `file://${process.argv[1]}`) {
  const runtime = new LocalRuntime({ storage: new MemoryStorage() });
  const users = Array.from({ length: 12 }, (_, index) => `user-${index}@example.com`);
  const started = Date.now();
  const runs = await Promise.all(
    ["acme", "globex", "acme"].map((tenant) => runtime.start(campaign, [tenant, users])),
  );
  for (const { runId } of runs) {
    const run = await runtime.waitForRun(runId);
    console.log(`${run.runId} ${run.status}: ${String(run.result)} emails, ${Date.now() - started} ms`);
  }
  await runtime.close();
}
