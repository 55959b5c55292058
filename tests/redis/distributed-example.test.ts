import { describe, expect, it } from "vitest";
import { runDistributedExample } from "../../examples/distributed.ts";

describe("examples/distributed.ts", () => {
  it("runs twenty order pipelines on three worker processes and reports who ran each step", async () => {
    // Act: no URL, so the example starts its own redis-server, as `npx tsx examples/distributed.ts` does.
    const summary = await runDistributedExample({ runs: 20, workers: 3 });
    // Assess
    expect(summary.rows).toHaveLength(20);
    for (const row of summary.rows) {
      expect(row.status).toBe("completed");
      expect(Object.keys(row.steps).sort()).toEqual(["charge_card", "reserve_stock", "send_receipt", "ship"]);
    }
    expect(Object.values(summary.perWorker).reduce((a, b) => a + b, 0)).toBe(80);
    for (const worker of Object.keys(summary.perWorker))
      expect(["worker-1", "worker-2", "worker-3"]).toContain(worker);
    expect(Object.keys(summary.perWorker).length).toBeGreaterThan(1);
  });
});
