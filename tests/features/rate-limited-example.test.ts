import { configureLogging } from "tsworkflow";
import {
  MemoryRateLimitStore,
  MemorySlotStore,
  type RateLimitStore,
  type SlotStore,
} from "tsworkflow/engine";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { campaign } from "../../examples/rate-limited.ts";
import { mostInAWindow } from "../support/windows.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

/** Slots that note the most holders each key ever had at once. */
class CountingSlots implements SlotStore {
  readonly most = new Map<string, number>();
  private readonly inner = new MemorySlotStore();
  async acquire(request: Parameters<SlotStore["acquire"]>[0]) {
    const answer = await this.inner.acquire(request);
    const holding = (await this.inner.inspect(request.key, request.now)).holding.length;
    this.most.set(request.key, Math.max(this.most.get(request.key) ?? 0, holding));
    return answer;
  }
  release(key: string, holder: string, token: string) {
    return this.inner.release(key, holder, token);
  }
  inspect(key: string, now: number) {
    return this.inner.inspect(key, now);
  }
}

/** Rates that note when each start was granted, per key. */
class RecordingRates implements RateLimitStore {
  readonly starts = new Map<string, Map<string, number>>();
  private readonly inner = new MemoryRateLimitStore();
  async take(request: Parameters<RateLimitStore["take"]>[0]) {
    const answer = await this.inner.take(request);
    const starts = this.starts.get(request.key) ?? new Map<string, number>();
    this.starts.set(request.key, starts);
    if (answer.granted && !starts.has(request.holder)) starts.set(request.holder, request.now);
    return answer;
  }
  started(key: string, holder: string, at: number) {
    return this.inner.started(key, holder, at);
  }
  leave(key: string, holder: string) {
    return this.inner.leave(key, holder);
  }
  inspect(key: string, periodMs: number, now: number) {
    return this.inner.inspect(key, periodMs, now);
  }
}

describe("examples/rate-limited.ts", () => {
  it("sends every email within the tenant's rate and the global concurrency, one campaign per tenant at a time", async () => {
    // Prepare
    const storage = new MemoryStorage();
    const slots = new CountingSlots();
    const rates = new RecordingRates();
    const runtime = new LocalRuntime({ storage, slots, rates, recover: false });
    const users = Array.from({ length: 8 }, (_, index) => `user-${index}@example.com`);
    try {
      // Act
      const [acme, globex, acmeAgain] = await Promise.all(
        ["acme", "globex", "acme"].map((tenant) => runtime.start(campaign, [tenant, users])),
      );
      const runs = await Promise.all(
        [acme, globex, acmeAgain].map((started) =>
          runtime.waitForRun(started?.runId ?? "", { timeoutMs: 60_000 }),
        ),
      );

      // Assess
      expect(runs.map((run) => [run.status, run.result])).toEqual(Array(3).fill(["completed", 8]));
      expect(slots.most.get("step:send_campaign_email:")).toBe(3);
      for (const tenant of ["acme", "globex"]) {
        const times = [...(rates.starts.get(`step:send_campaign_email:${tenant}`)?.values() ?? [])].sort(
          (a, b) => a - b,
        );
        expect(times).toHaveLength(tenant === "acme" ? 16 : 8);
        expect(mostInAWindow(times, 1_000)).toBe(5);
      }
      // The second acme campaign sent nothing before the first one ended.
      const first = await storage.getEvents(acme?.runId ?? "");
      const second = await storage.getEvents(acmeAgain?.runId ?? "");
      const [earlier, later] =
        Date.parse(first.at(-1)?.timestamp ?? "") <= Date.parse(second.at(-1)?.timestamp ?? "")
          ? [first, second]
          : [second, first];
      const firstStepOfLater = later.find((event) => event.type === "step_started");
      expect(Date.parse(firstStepOfLater?.timestamp ?? "")).toBeGreaterThanOrEqual(
        Date.parse(earlier.at(-1)?.timestamp ?? ""),
      );
      expect(later.map((event) => event.type)).toEqual([
        "workflow_started",
        ...Array(8).fill("step_started"),
        ...Array(8).fill("step_completed"),
        "workflow_completed",
      ]);
    } finally {
      await runtime.close();
    }
  });
});
