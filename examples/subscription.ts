/**
 * A monthly subscription that runs for years: each month it charges the customer and sleeps until the next
 * one; every 12 months it continues as new, so that no run's log grows past a year of events. The chain
 * keeps the customer's tags, and `waitForRun(firstRunId, { followContinuations: true })` follows it to the
 * end (here, after `months` months; without a limit it would go on until cancelled).
 *
 *   npx tsx examples/subscription.ts   # 30 months in a few seconds, on a time-skipping test environment
 */
import { continueAsNew, log, sleep, step, workflow } from "tsworkflow";
import { createTestEnvironment } from "tsworkflow/testing";

export const chargeMonth = step("subscription_charge", async (customer: string, month: number) => ({
  customer,
  month,
  amountCents: 999,
}));

/** Bills `customer` from month `first` on, up to month `months` (null: until the run is cancelled). */
export const subscription = workflow(
  "subscription",
  async (customer: string, first: number, months: number | null) => {
    for (let month = first; month < first + 12; month += 1) {
      if (months !== null && month > months) return { customer, monthsBilled: months };
      await chargeMonth(customer, month);
      await sleep("30d");
    }
    log.info("a year billed: continuing as new", { customer, next: first + 12 });
    return continueAsNew(customer, first + 12, months);
  },
);

if (import.meta.url === `file://${process.argv[1]}`) {
  const env = await createTestEnvironment({ timeSkipping: true });
  const run = await env.start(subscription, ["cus_42", 1, 30], { tags: { plan: "pro" } });
  console.log(await run.result()); // { customer: "cus_42", monthsBilled: 30 }, from the third run of the chain
  console.log(await run.timeline());
  await env.close();
}
