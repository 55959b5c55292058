import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigurationError,
  configureLogging,
  getStepInfo,
  now,
  step,
  type WorkflowEvent,
  workflow,
} from "tsworkflow";
import { type EventStore, MemoryRateLimitStore, type RateLimitStore } from "tsworkflow/engine";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { createTestEnvironment, replayHistory } from "tsworkflow/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mostInAWindow } from "../support/windows.ts";
import { virtualRuntime } from "./support.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

const PERIOD = 300;

/**
 * A rate limit store that records when each holder got its start, and when the engine reported that its step
 * function began (the time the limit counts from then on).
 */
class RecordingRates implements RateLimitStore {
  readonly grants = new Map<string, { key: string; at: number }>();
  readonly began = new Map<string, number>();
  private readonly inner = new MemoryRateLimitStore();
  async take(request: Parameters<RateLimitStore["take"]>[0]) {
    const answer = await this.inner.take(request);
    if (answer.granted && !this.grants.has(request.holder))
      this.grants.set(request.holder, { key: request.key, at: request.now });
    return answer;
  }
  started(key: string, holder: string, at: number) {
    if (!this.began.has(holder)) this.began.set(holder, at);
    return this.inner.started(key, holder, at);
  }
  leave(key: string, holder: string) {
    return this.inner.leave(key, holder);
  }
  inspect(key: string, periodMs: number, now: number) {
    return this.inner.inspect(key, periodMs, now);
  }
  /** The grant times of a key, in order. */
  timesOf(key: string): number[] {
    return [...this.grants.values()]
      .filter((grant) => grant.key === key)
      .map((grant) => grant.at)
      .sort((a, b) => a - b);
  }
}

/** The start times the step functions saw themselves, per key (first start of each attempt). */
const bodyStarts = new Map<string, Map<string, number>>();
function started(key: string): void {
  const info = getStepInfo();
  const id = `${info?.runId}/${info?.stepId}/${info?.attempt}`;
  const starts = bodyStarts.get(key) ?? new Map<string, number>();
  bodyStarts.set(key, starts);
  if (!starts.has(id)) starts.set(id, Date.now());
}

const sendEmail = step(
  "rl_send_email",
  async (tenant: string, to: string) => {
    started(tenant);
    return `sent to ${to}`;
  },
  { rateLimit: { limit: 3, period: PERIOD, key: (tenant) => tenant } },
);

const campaign = workflow("rl_campaign", async (tenant: string, users: string[]) =>
  Promise.all(users.map((user) => sendEmail(tenant, user))),
);

/** Long enough that the runs beyond the limit are still pending when the first ones are done, on a busy machine. */
const RUN_PERIOD = 1_000;
const report = workflow("rl_report", async (label: string) => label, {
  rateLimit: { limit: 2, period: RUN_PERIOD },
});

const HOUR = 3_600_000;
/** When each call of `rl_hourly` began, on the runtime's clock. */
const hourlyStarts: number[] = [];
let hourlyClock: () => number = Date.now;
const hourly = step(
  "rl_hourly",
  async (index: number) => {
    hourlyStarts.push(hourlyClock());
    return index;
  },
  { rateLimit: { limit: 2, period: "1h" } },
);
const hourlyBurst = workflow("rl_hourly_burst", async () =>
  Promise.all([0, 1, 2].map((index) => hourly(index))),
);

/** When each call of `rl_each_second` began, on the runtime's clock. */
const eachSecondStarts: number[] = [];
const eachSecond = step(
  "rl_each_second",
  async (label: string) => {
    eachSecondStarts.push(hourlyClock());
    return label;
  },
  { rateLimit: { limit: 1, period: 1_000 } },
);
const oneCall = workflow("rl_one_call", async (label: string) => eachSecond(label));

describe("rate limits on the embedded runtime", () => {
  for (const backend of ["memory", "file"] as const) {
    it(`starts at most the limit of a step per period per key on the ${backend} backend, delaying the rest without using an attempt`, async () => {
      // Prepare
      bodyStarts.clear();
      const dir = mkdtempSync(join(tmpdir(), "tsw-rate-limits-"));
      const storage: EventStore = backend === "memory" ? new MemoryStorage() : new FileStorage({ dir });
      const rates = new RecordingRates();
      const runtime = new LocalRuntime({ storage, rates, recover: false });
      try {
        const users = Array.from({ length: 4 }, (_, index) => `user-${index}`);
        // Act
        const runs = [];
        for (const tenant of ["acme", "acme", "globex", "globex"])
          runs.push(await runtime.start(campaign, [tenant, users]));
        const ended = await Promise.all(
          runs.map(({ runId }) => runtime.waitForRun(runId, { timeoutMs: 60_000 })),
        );

        // Assess
        expect(ended.map((run) => run.status)).toEqual(Array(4).fill("completed"));
        for (const tenant of ["acme", "globex"]) {
          const grants = rates.timesOf(`step:rl_send_email:${tenant}`);
          expect(grants).toHaveLength(8);
          expect(mostInAWindow(grants, PERIOD)).toBe(3);
          // 8 starts at 3 per period take at least two periods.
          expect((grants[7] as number) - (grants[0] as number)).toBeGreaterThanOrEqual(2 * PERIOD);
          // Each start is counted from when its step function began, as the engine reported it.
          const bodies = bodyStarts.get(tenant) ?? new Map<string, number>();
          const began = [...bodies.keys()].map((holder) => rates.began.get(holder) as number);
          expect(began.every((at) => at !== undefined)).toBe(true);
          expect(mostInAWindow(began, PERIOD)).toBe(3);
          // The step functions' own clocks see the limit kept too, up to how late each read Date.now() after
          // the engine's stamp: at least 1 ms (whole milliseconds), more when the machine is busy.
          const lag = Math.max(1, ...[...bodies].map(([holder, at]) => at - (rates.began.get(holder) ?? at)));
          expect(bodies.size).toBe(8);
          expect(mostInAWindow([...bodies.values()], PERIOD - lag)).toBe(3);
        }
        for (const { runId } of runs) {
          const events = await storage.getEvents(runId);
          expect(events.filter((event) => event.type === "step_retrying")).toEqual([]);
        }
      } finally {
        await runtime.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("keeps runs of a rate-limited workflow pending until their turn, then starts them, never more than the limit per period", async () => {
    // Prepare
    const rates = new RecordingRates();
    const runtime = new LocalRuntime({ storage: new MemoryStorage(), rates, recover: false });
    try {
      // Act
      const runs = [];
      for (let index = 0; index < 6; index += 1) runs.push(await runtime.start(report, [`report-${index}`]));
      await runtime.idle();
      const statuses = await Promise.all(
        runs.map(async ({ runId }) => (await runtime.getRun(runId))?.status),
      );
      const ended = await Promise.all(
        runs.map(({ runId }) => runtime.waitForRun(runId, { timeoutMs: 60_000 })),
      );

      // Assess
      expect(statuses.filter((status) => status === "pending").length).toBeGreaterThanOrEqual(4);
      expect(ended.map((run) => run.status)).toEqual(Array(6).fill("completed"));
      const grants = rates.timesOf("run:rl_report:");
      expect(grants).toHaveLength(6);
      expect(mostInAWindow(grants, RUN_PERIOD)).toBe(2);
      // Runs start in the order they were created, two per period: the runs let in by one period's turn may
      // ask in either order (their timers fire together), but never a run created later in an earlier turn.
      const byGrant = [...rates.grants.keys()];
      const created = runs.map(({ runId }) => runId);
      for (let turn = 0; turn < 6; turn += 2)
        expect(new Set(byGrant.slice(turn, turn + 2))).toEqual(new Set(created.slice(turn, turn + 2)));
    } finally {
      await runtime.close();
    }
  });

  it("sends a step whose start must wait again at its turn on a virtual clock: manual timers release it when the clock gets there", async () => {
    // Prepare
    const env = virtualRuntime();
    hourlyStarts.length = 0;
    hourlyClock = () => env.clock.now();
    const start = env.clock.now();
    try {
      const { runId } = await env.runtime.start(hourlyBurst, []);
      await env.settle();

      // Act
      await env.advance(HOUR - 1_000);
      const before = [...hourlyStarts];
      await env.advance(2_000);

      // Assess
      expect(before).toEqual([start, start]);
      expect(await env.run(runId)).toMatchObject({ status: "completed", result: [0, 1, 2] });
      // It started when the clock got past its turn, as a timer fires.
      expect(hourlyStarts).toEqual([start, start, start + HOUR + 1_000]);
    } finally {
      hourlyClock = Date.now;
      await env.close();
    }
  }, 10_000);

  it("gives up the place of a step whose run was cancelled while it waited for its turn: the step behind it starts at its own turn", async () => {
    // Prepare: one start a second (a window of 1,001 ms: see CLOCK_TICK_MS); the second run's step is told
    // its turn at +1,001 ms, the third's at +2,002 ms, counting on the second's start.
    const env = virtualRuntime();
    eachSecondStarts.length = 0;
    hourlyClock = () => env.clock.now();
    const start = env.clock.now();
    try {
      const runs = [];
      for (const label of ["first", "cancelled", "third"])
        runs.push(await env.runtime.start(oneCall, [label]));
      await env.settle();
      const [first, cancelled, third] = runs.map((run) => run.runId) as [string, string, string];

      // Act: the second run is cancelled while its step waits; its task comes back at its turn and gives up.
      await env.runtime.cancelRun(cancelled);
      await env.settle();
      await env.advance(1_001);
      await env.advance(1_001);

      // Assess: the third run's step started at its turn, not a minute later, when the place would have run out.
      expect((await env.run(first)).status).toBe("completed");
      expect((await env.run(cancelled)).status).toBe("cancelled");
      expect(await env.run(third)).toMatchObject({ status: "completed", result: "third" });
      expect(eachSecondStarts).toEqual([start, start + 2_002]);
    } finally {
      hourlyClock = Date.now;
      await env.close();
    }
  }, 10_000);

  it("rejects a rate limit without a positive limit or period with a ConfigurationError", () => {
    expect(() => step("rl_bad", async () => 1, { rateLimit: { limit: 0, period: "1m" } })).toThrow(
      ConfigurationError,
    );
    expect(() => workflow("rl_bad_period", async () => 1, { rateLimit: { limit: 1, period: 0 } })).toThrow(
      ConfigurationError,
    );
  });
});

describe("now() in a run that waited in line", () => {
  const stamp = step("rl_now_stamp", async (at: string) => at);
  /** One start a day; says what now() gave before its first wait, the step, and after it. */
  const daily = workflow(
    "rl_now_daily",
    async () => {
      const begun = now().toISOString();
      const stamped = await stamp(now().toISOString());
      return [begun, stamped, now().toISOString()];
    },
    { rateLimit: { limit: 1, period: "1d" } },
  );

  it("gives its creation time before its first wait and the time it runs after it, the same on replay", async () => {
    // Prepare
    const env = await createTestEnvironment({ timeSkipping: true });
    try {
      const runs = [];
      for (let i = 0; i < 3; i += 1) runs.push(await env.start(daily, []));
      // Act
      const results = await Promise.all(runs.map((run) => run.result()));
      // Assess: each run begins when its turn comes, a day after the one before. Before its first wait it
      // reads its start (its creation: what a log recorded by any version replays the same), after it the
      // time its step ran.
      const day = 24 * 60 * 60 * 1000;
      for (const [k, run] of runs.entries()) {
        const [started, letIn] = (await run.events()) as [WorkflowEvent, WorkflowEvent];
        const waited = Date.parse(letIn.timestamp) - Date.parse(started.timestamp);
        expect(waited).toBeGreaterThanOrEqual(k * day - 1000);
        expect(waited).toBeLessThan(k * day + 1000);
        expect(results[k]).toEqual([started.timestamp, started.timestamp, letIn.timestamp]);
      }
      for (const run of runs) expect((await replayHistory(daily, await run.events())).ok).toBe(true);
    } finally {
      await env.close();
    }
  });
});
