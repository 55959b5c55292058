import { configureLogging, InvalidRunStateError, runChild, sleep, waitForEvent, workflow } from "tsworkflow";
import { createTestEnvironment, type TestEnvironment } from "tsworkflow/testing";
import { afterEach, beforeAll, describe, expect, it } from "vitest";

const START = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

const environments: TestEnvironment[] = [];
async function environment(options: Parameters<typeof createTestEnvironment>[0] = {}) {
  const env = await createTestEnvironment({ startAt: START, ...options });
  environments.push(env);
  return env;
}

/** One run per account at a time; each run waits for the event "go". */
function accountSync(env: TestEnvironment) {
  return env.define(() =>
    workflow(
      "lim_account_sync",
      async (account: string) => {
        await waitForEvent("go");
        return `synced ${account}`;
      },
      { concurrency: { limit: 1, key: (account) => account } },
    ),
  );
}

/** One run per account at a time; each run sleeps an hour. */
function accountNap(env: TestEnvironment) {
  return env.define(() =>
    workflow(
      "lim_account_nap",
      async (account: string) => {
        await sleep("1h");
        return `rested ${account}`;
      },
      { concurrency: { limit: 1, key: (account) => account } },
    ),
  );
}

/** Rejects within two seconds of real time: a result() that would never settle fails the test, not its timeout. */
function settledSoon(promise: Promise<unknown>): Promise<unknown> {
  return Promise.race([
    promise.then(
      (value) => ({ value }),
      (error: unknown) => error,
    ),
    new Promise((resolve) => setTimeout(() => resolve("still waiting after 2 s of real time"), 2_000)),
  ]);
}

beforeAll(() => configureLogging({ level: "silent" }));
afterEach(async () => {
  for (const env of environments.splice(0)) await env.close();
});

describe("createTestEnvironment: runs pending behind a run concurrency slot", () => {
  it("rejects result() with timeSkipping when the slot's holder waits for an event, naming the slot, the holder and what to call", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const sync = accountSync(env);
    const holder = await env.start(sync, ["acme"]);
    const pending = await env.start(sync, ["acme"]);

    // Act
    const error = (await settledSoon(pending.result())) as Error;

    // Assess
    expect(error).toBeInstanceOf(InvalidRunStateError);
    const [first, , headline] = error.message.split("\n");
    expect(first).toBe(
      `Run ${pending.runId} of lim_account_sync is pending and will not finish by itself: it waits for a run concurrency slot of key run:lim_account_sync:acme (at most 1 at once), held by run ${holder.runId}. ` +
        `Run ${holder.runId} is suspended, waiting for event "go" (go#0), and will not finish by itself: nothing in this test environment moves it on. ` +
        `Send it an event (env.getHandle("${holder.runId}").sendEvent), call its webhook (env.getHandle("${holder.runId}").callWebhook) or cancel it (env.getHandle("${holder.runId}").cancel). ` +
        "This run is first in line: the first slot to come free goes to it.",
    );
    expect(headline).toBe(
      `Run ${pending.runId} of lim_account_sync is pending, waiting for a run concurrency slot of key run:lim_account_sync:acme (at most 1 at once)`,
    );
    expect(env.now().getTime()).toBe(START);
  });

  it("goes on with the pending run once the test does what the message says", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const sync = accountSync(env);
    const holder = await env.start(sync, ["acme"]);
    const pending = await env.start(sync, ["acme"]);
    await settledSoon(pending.result());

    // Act
    await env.getHandle(holder.runId).sendEvent("go", null);
    await pending.sendEvent("go", null);

    // Assess
    expect(await holder.result()).toBe("synced acme");
    expect(await settledSoon(pending.result())).toEqual({ value: "synced acme" });
  });

  it("rejects result() without timeSkipping naming the slot and its holder, not the slot's re-check", async () => {
    // Prepare
    const env = await environment();
    const sync = accountSync(env);
    const holder = await env.start(sync, ["acme"]);
    const pending = await env.start(sync, ["acme"]);

    // Act
    const error = (await pending.result().catch((caught: unknown) => caught)) as Error;

    // Assess
    expect(error).toBeInstanceOf(InvalidRunStateError);
    expect(error.message).toContain(
      `held by run ${holder.runId}. Run ${holder.runId} is suspended, waiting for event "go" (go#0), and will not finish by itself: nothing in this test environment moves it on.`,
    );
    expect(error.message).not.toContain("Move the clock");
    expect(error.message).not.toContain("timeSkipping");
  });

  it("lets result() with timeSkipping run the pending run once the holder's sleep has ended", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const nap = accountNap(env);
    const holder = await env.start(nap, ["acme"]);
    const pending = await env.start(nap, ["acme"]);

    // Act
    const outcome = await settledSoon(pending.result());

    // Assess
    expect(outcome).toEqual({ value: "rested acme" });
    expect(await holder.status()).toBe("completed");
    expect(env.now().getTime()).toBe(START + 2 * HOUR);
  });

  it("says without timeSkipping that the holder's timer frees the slot once the clock moves", async () => {
    // Prepare
    const env = await environment();
    const nap = accountNap(env);
    const holder = await env.start(nap, ["acme"]);
    const pending = await env.start(nap, ["acme"]);

    // Act
    const error = (await pending.result().catch((caught: unknown) => caught)) as Error;

    // Assess
    expect(error).toBeInstanceOf(InvalidRunStateError);
    expect(error.message.split("\n")[0]).toBe(
      `Run ${pending.runId} of lim_account_nap is pending and will not finish by itself: it waits for a run concurrency slot of key run:lim_account_nap:acme (at most 1 at once), held by run ${holder.runId}. ` +
        `Run ${holder.runId} is suspended, waiting for sleep#0 until ${new Date(START + HOUR).toISOString()}, and will not finish by itself until the clock moves: its next timer is due in 1h on the virtual clock (${new Date(START + HOUR).toISOString()}). ` +
        "Move the clock with env.skip(duration) or env.skipToNextTimer(), or create the environment with { timeSkipping: true } so that result() does it. " +
        "This run is first in line: the first slot to come free goes to it.",
    );
  });

  it("does not move the clock for a slot's re-check that cannot succeed: skipToNextTimer says no timer is left", async () => {
    // Prepare
    const env = await environment();
    const sync = accountSync(env);
    await env.start(sync, ["acme"]);
    const pending = await env.start(sync, ["acme"]);

    // Act
    const next = await env.skipToNextTimer();

    // Assess
    expect(next).toBeUndefined();
    expect(env.now().getTime()).toBe(START);
    expect(await pending.status()).toBe("pending");
  });
  it("rejects result() with timeSkipping of a run that waits for its own child, pending behind the slot the parent holds", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const nested = env.define(() => {
      const parentAndChild = workflow(
        "lim_nested",
        async (depth: number): Promise<string> =>
          depth === 0 ? `outer of ${await runChild(parentAndChild, [1])}` : "inner",
        { concurrency: { limit: 1 } },
      );
      return parentAndChild;
    });
    const parent = await env.start(nested, [0]);

    // Act
    const error = (await settledSoon(parent.result())) as Error;

    // Assess
    expect(error).toBeInstanceOf(InvalidRunStateError);
    expect(error.message).toMatch(/is suspended, waiting for child run child_\w+ \(lim_nested\)/);
    expect(error.message.split("\n")[0]).toMatch(
      new RegExp(
        `is suspended and will not finish by itself\\. Its child run child_\\w+ is pending: it waits for a run concurrency slot of key run:lim_nested:? \\(at most 1 at once\\), held by run ${parent.runId}: this run, which holds it while it waits for the child\\. Give the child's workflow a concurrency key of its own \\(or no limit\\), or do its work in steps of this run\\.$`,
      ),
    );
    expect(env.now().getTime()).toBe(START);
  });
});

describe("createTestEnvironment: runs pending for their rate-limit start", () => {
  it("lets result() with timeSkipping reach a run's rate-limit turn: the start beyond the limit comes a period later", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const hourly = env.define(() =>
      workflow("lim_hourly", async (index: number) => `started ${index}`, {
        rateLimit: { limit: 1, period: "1h" },
      }),
    );
    const first = await env.start(hourly, [1]);
    const second = await env.start(hourly, [2]);
    const pendingBefore = await second.status();

    // Act
    const outcome = await settledSoon(second.result());

    // Assess
    expect(await first.result()).toBe("started 1");
    expect(pendingBefore).toBe("pending");
    expect(outcome).toEqual({ value: "started 2" });
    expect(env.now().getTime()).toBeGreaterThanOrEqual(START + HOUR);
    expect(env.now().getTime()).toBeLessThan(START + HOUR + 1_000);
  });

  it("says when the rate-limit turn comes without timeSkipping, and names the rate limit in the timeline", async () => {
    // Prepare
    const env = await environment();
    const hourly = env.define(() =>
      workflow("lim_hourly_slow", async (index: number) => `started ${index}`, {
        rateLimit: { limit: 1, period: "1h" },
      }),
    );
    await env.start(hourly, [1]);
    const second = await env.start(hourly, [2]);

    // Act
    const error = (await second.result().catch((caught: unknown) => caught)) as Error;

    // Assess
    expect(error).toBeInstanceOf(InvalidRunStateError);
    const [first, , headline] = error.message.split("\n");
    expect(first).toContain(
      `Run ${second.runId} of lim_hourly_slow is pending and will not finish by itself until the clock moves: its next timer is due in 1h`,
    );
    expect(headline).toMatch(
      new RegExp(
        `^Run ${second.runId} of lim_hourly_slow is pending, waiting for its start under rate limit run:lim_hourly_slow\\S* \\(at most 1 per 1h\\)$`,
      ),
    );
  });

  it("lets result() with timeSkipping reach the rate-limit turn of a run that also waits for its slot, once the holder ends", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const limited = env.define(() =>
      workflow(
        "lim_both",
        async (account: string) => {
          await sleep("10m");
          return `done ${account}`;
        },
        { concurrency: { limit: 1, key: (account) => account }, rateLimit: { limit: 1, period: "1h" } },
      ),
    );
    await env.start(limited, ["acme"]);
    const pending = await env.start(limited, ["acme"]);

    // Act
    const outcome = await settledSoon(pending.result());

    // Assess
    expect(outcome).toEqual({ value: "done acme" });
    expect(env.now().getTime()).toBeGreaterThanOrEqual(START + HOUR + 10 * 60_000);
    expect(env.now().getTime()).toBeLessThan(START + HOUR + 10 * 60_000 + 1_000);
  });
});
