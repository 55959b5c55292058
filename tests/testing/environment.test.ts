import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CancelledError,
  ConfigurationError,
  configure,
  configureLogging,
  continueAsNew,
  createWebhook,
  FatalError,
  getStepInfo,
  InvalidRunIdError,
  InvalidRunStateError,
  map,
  now,
  RetryableError,
  RuntimeClosedError,
  runChild,
  sendEvent,
  shutdown,
  sleep,
  start,
  step,
  TimeoutError,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { FileStorage } from "tsworkflow/local";
import { createTestEnvironment, type RunHandle, type TestEnvironment } from "tsworkflow/testing";
import { afterEach, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { type ApprovalResult, approvalOrder, fulfil, requestApproval } from "../../examples/approval.ts";

const START = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let realCharges = 0;
const charge = step(
  "env_charge",
  async (orderId: string, amount: number) => {
    realCharges += 1;
    return { chargeId: `real-${orderId}-${amount}` };
  },
  { maxRetries: 3, retryDelay: "1m" },
);
const checkout = workflow("env_checkout", async (orderId: string, amount: number) => {
  const { chargeId } = await charge(orderId, amount);
  return { orderId, chargeId };
});

const stampTime = step("env_stamp", async (label: string) => label);
const schedule = workflow("env_schedule", async () => {
  await sleep("1h");
  await stampTime(`after 1h at ${now().toISOString()}`);
  await sleep("1d");
  return `done at ${now().toISOString()}`;
});

const nap = workflow("env_nap", async (minutes: number) => {
  await sleep({ minutes });
  return `woke at ${now().toISOString()}`;
});

const expense = workflow("env_expense", async (amount: number) => {
  try {
    const { approved } = await waitForEvent<{ approved: boolean }>("approval", { timeout: "3d" });
    return approved ? `paid ${amount}` : "rejected";
  } catch (error) {
    if (error instanceof TimeoutError) return "expired";
    throw error;
  }
});

const environments: TestEnvironment[] = [];
const dirs: string[] = [];
async function environment(options: Parameters<typeof createTestEnvironment>[0] = {}) {
  const env = await createTestEnvironment({ startAt: START, ...options });
  environments.push(env);
  return env;
}
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tsw-testenv-"));
  dirs.push(dir);
  return dir;
}

/**
 * A workflow that calls a step limited to 2 starts an hour 3 times at once; `startsAt` gets the virtual time
 * (from START) at which each call began, of the real step or of its fake.
 */
function hourlyBurst(env: TestEnvironment, variant: "real" | "fake" = "real") {
  const startsAt: number[] = [];
  const begin = (index: number) => {
    startsAt.push(env.now().getTime() - START);
    return `${variant} ${index}`;
  };
  const rated = env.define(() =>
    step("env_hourly", async (index: number) => begin(index), { rateLimit: { limit: 2, period: "1h" } }),
  );
  if (variant === "fake") env.fakeStep(rated, async (index) => begin(index));
  const burst = env.define(() =>
    workflow("env_hourly_burst", async () => Promise.all([0, 1, 2].map((index) => rated(index)))),
  );
  return { burst, startsAt };
}

/** A step function that counts its calls and the most of them running at once. */
class Counter {
  calls = 0;
  peak = 0;
  private running = 0;

  async run(index: number): Promise<number> {
    this.calls += 1;
    this.running += 1;
    this.peak = Math.max(this.peak, this.running);
    // Real time, so that the attempts let in together overlap (the limit, not the timing, sets the peak).
    await new Promise((resolve) => setTimeout(resolve, 5));
    this.running -= 1;
    return index;
  }
}

beforeAll(() => configureLogging({ level: "silent" }));
afterEach(async () => {
  for (const env of environments.splice(0)) await env.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("createTestEnvironment: registries and fakes", () => {
  it("gives each environment a registry of its own, so two tests can define the same names", async () => {
    // Prepare
    const first = await environment();
    const second = await environment();
    const inFirst = first.define(() => {
      const shout = step("env_shout", async (text: string) => text.toUpperCase());
      return workflow("env_greet", async (name: string) => `hello ${await shout(name)}`);
    });
    const inSecond = second.define(() => {
      const whisper = step("env_shout", async (text: string) => text.toLowerCase());
      return workflow("env_greet", async (name: string) => `psst ${await whisper(name)}`);
    });

    // Act
    const a = await first.start(inFirst, ["Ada"]);
    const b = await second.start(inSecond, ["Ada"]);

    // Assess
    expect(await a.result()).toBe("hello ADA");
    expect(await b.result()).toBe("psst ada");
    expect((await environment()).registry.findWorkflow("env_greet")).toBeUndefined();
  });

  it("runs a step fake given by name in its environment only, while the real step runs elsewhere", async () => {
    // Prepare
    realCharges = 0;
    const faked = await environment({ steps: { env_charge: async () => ({ chargeId: "fake" }) } });
    const real = await environment();

    // Act
    const fakedRun = await faked.start(checkout, ["o-1", 42]);
    const realRun = await real.start(checkout, ["o-1", 42]);

    // Assess
    expect(await fakedRun.result()).toEqual({ orderId: "o-1", chargeId: "fake" });
    expect(await realRun.result()).toEqual({ orderId: "o-1", chargeId: "real-o-1-42" });
    expect(realCharges).toBe(1);
  });

  it("refuses a fake for a step no module defines, by name in the options or later, so that a typo cannot let the real step run", async () => {
    // Prepare
    const env = await environment();
    // Act
    const inOptions = createTestEnvironment({ steps: { env_chrage: async () => ({ chargeId: "fake" }) } });
    const later = () => env.fakeStep("env_chrage", async () => ({ chargeId: "fake" }));
    // Assess
    await expect(inOptions).rejects.toMatchObject({
      name: "ConfigurationError",
      message: expect.stringContaining('No step named "env_chrage" to fake: check the name'),
    });
    expect(later).toThrow('No step named "env_chrage" to fake');
  });

  it("runs a step defined again through env.define in its environment only, in place of the imported one", async () => {
    // Prepare
    realCharges = 0;
    const overridden = await environment();
    overridden.define(() =>
      step("env_charge", async (orderId: string) => ({ chargeId: `redefined-${orderId}` })),
    );
    const real = await environment();

    // Act
    const overriddenRun = await overridden.start(checkout, ["o-9", 5]);
    const realRun = await real.start(checkout, ["o-9", 5]);

    // Assess
    expect(await overriddenRun.result()).toEqual({ orderId: "o-9", chargeId: "redefined-o-9" });
    expect(await realRun.result()).toEqual({ orderId: "o-9", chargeId: "real-o-9-5" });
    expect(realCharges).toBe(1);
  });

  it("runs a fake given by the step with the step's arguments, and keeps the step's retry policy", async () => {
    // Prepare
    const env = await environment();
    const calls: unknown[][] = [];
    env.fakeStep(charge, async (orderId, amount) => {
      calls.push([orderId, amount, getStepInfo()?.attempt]);
      if (calls.length < 3) throw new RetryableError("gateway busy");
      return { chargeId: `fake-${orderId}` };
    });

    // Act
    const run = await env.start(checkout, ["o-2", 7]);
    const afterFirst = await run.step(charge);
    await env.skip("1m");
    await env.skip("1m");

    // Assess
    expect(afterFirst).toMatchObject({
      status: "retrying",
      attempts: 1,
      error: { name: "RetryableError", message: "gateway busy" },
    });
    expect(calls).toEqual([
      ["o-2", 7, 1],
      ["o-2", 7, 2],
      ["o-2", 7, 3],
    ]);
    expect(await run.step(charge)).toEqual({
      id: "env_charge#0",
      name: "env_charge",
      status: "completed",
      attempts: 3,
      input: ["o-2", 7],
      result: { chargeId: "fake-o-2" },
    });
    expect(await run.result()).toEqual({ orderId: "o-2", chargeId: "fake-o-2" });
  });

  it("lets a fake be replaced between runs, and a failed run retried with the new one", async () => {
    // Prepare
    const env = await environment();
    env.fakeStep("env_charge", async () => {
      throw new FatalError("card declined");
    });
    const run = await env.start(checkout, ["o-3", 9]);
    const failure = await run.result().catch((error: unknown) => error);

    // Act
    env.fakeStep(charge, async (orderId) => ({ chargeId: `second-${orderId}` }));
    await run.retry();

    // Assess
    expect(failure).toBeInstanceOf(FatalError);
    expect(await run.result()).toEqual({ orderId: "o-3", chargeId: "second-o-3" });
    expect(await run.step(charge)).toMatchObject({ status: "completed", attempts: 2 });
  });

  it("runs a fake under the step's concurrency limit: no more of its attempts at once than of the real step's", async () => {
    // Prepare
    const peaks: Record<string, number> = {};
    for (const variant of ["real", "fake"] as const) {
      const env = await environment();
      const counted = new Counter();
      const limited = env.define(() =>
        step("env_limited", (index: number) => counted.run(index), { concurrency: { limit: 3 } }),
      );
      const fanOut = env.define(() =>
        workflow("env_fan_out", async (count: number) =>
          map(
            Array.from({ length: count }, (_, index) => index),
            (index) => limited(index),
            { concurrency: 10 },
          ),
        ),
      );
      const faked = new Counter();
      if (variant === "fake") env.fakeStep(limited, (index) => faked.run(index));

      // Act
      const run = await env.start(fanOut, [12]);

      // Assess
      expect(await run.result()).toHaveLength(12);
      peaks[variant] = variant === "fake" ? faked.peak : counted.peak;
      expect(variant === "fake" ? counted.calls : faked.calls).toBe(0);
    }
    expect(peaks).toEqual({ real: 3, fake: 3 });
  });

  it("runs a fake under the step's rate limit: the starts beyond it wait their turn, as the real step's do", async () => {
    // Prepare
    const env = await environment();
    const rated = env.define(() =>
      step("env_rated", async (index: number) => `real ${index}`, { rateLimit: { limit: 2, period: "1h" } }),
    );
    const burst = env.define(() =>
      workflow("env_burst", async () => Promise.all([0, 1, 2].map((index) => rated(index)))),
    );
    const calls: number[] = [];
    env.fakeStep(rated, async (index) => {
      calls.push(index);
      return `fake ${index}`;
    });

    // Act
    const run = await env.start(burst, []);

    // Assess
    expect(calls).toHaveLength(2);
    expect((await run.steps()).map((summary) => summary.status).sort()).toEqual([
      "completed",
      "completed",
      "running",
    ]);
  });

  it("retries a fake that keeps failing as the step's maxRetries, retryDelay and maxRetryDelay say, then fails the run with its error", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const flaky = env.define(() =>
      step("env_flaky_sync", async (_account: string) => "synced", {
        maxRetries: 4,
        retryDelay: "exponential",
        maxRetryDelay: "3s",
      }),
    );
    const sync = env.define(() => workflow("env_sync", async (account: string) => flaky(account)));
    const attemptsAt: number[] = [];
    env.fakeStep(flaky, async () => {
      attemptsAt.push(env.now().getTime() - START);
      throw new Error("ledger unreachable");
    });

    // Act
    const run = await env.start(sync, ["acc-1"]);
    const failure = await run.result().catch((error: unknown) => error);

    // Assess
    expect(failure).toMatchObject({ message: expect.stringContaining("ledger unreachable") });
    expect(attemptsAt).toEqual([0, 1_000, 3_000, 6_000, 9_000]);
    expect(await run.step(flaky)).toMatchObject({ status: "failed", attempts: 5 });
    expect(await run.status()).toBe("failed");
  });

  it("lets a fake steer its own run through the environment without waiting for itself", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const notify = step("env_notify", async (_runId: string) => "sent");
    const chatty = env.define(() =>
      workflow("env_chatty", async () => {
        await notify("me");
        return waitForEvent<string>("reply", { timeout: "1d" });
      }),
    );
    env.fakeStep(notify, async () => {
      const info = getStepInfo();
      await env.getHandle(info?.runId as string).sendEvent("reply", "answered from the step");
      return "sent";
    });

    // Act
    const run = await env.start(chatty, []);

    // Assess
    expect(await run.result()).toBe("answered from the step");
  });
});

describe("createTestEnvironment: the virtual clock", () => {
  it("moves the clock by chosen amounts, firing each timer at its own time, and shows the run in between", async () => {
    // Prepare
    const env = await environment();
    const run = await env.start(schedule, []);

    // Act
    await env.skip("30m");
    const halfway = await run.status();
    await env.skip({ minutes: 45 });
    const stamped = await run.step(stampTime);
    await env.skip("1d");

    // Assess
    expect(halfway).toBe("suspended");
    expect(stamped).toMatchObject({
      status: "completed",
      input: [`after 1h at ${new Date(START + HOUR).toISOString()}`],
    });
    expect(await run.result()).toBe(`done at ${new Date(START + HOUR + DAY).toISOString()}`);
    expect(env.now().getTime()).toBe(START + 30 * 60_000 + 45 * 60_000 + DAY);
  });

  it("fires timers due at once without moving the clock: a retry with no delay runs before start() returns", async () => {
    // Prepare
    const env = await environment();
    const hasty = env.define(() => {
      const flaky = step("env_flaky", async () => "ok", { maxRetries: 1, retryDelay: 0 });
      return workflow("env_hasty", async () => flaky());
    });
    let attempts = 0;
    env.fakeStep("env_flaky", async () => {
      attempts += 1;
      if (attempts === 1) throw new Error("first attempt fails");
      return "second attempt";
    });

    // Act
    const run = await env.start(hasty, []);

    // Assess
    expect(await run.status()).toBe("completed");
    expect(await run.step("env_flaky")).toMatchObject({ status: "completed", attempts: 2 });
    expect(env.now().getTime()).toBe(START);
  });

  it("refuses run.step() for a misspelt step name, which would read as a step not called, and answers undefined for a known step not called", async () => {
    // Prepare
    const env = await environment();
    const quiet = env.define(() => {
      step("env_never_called", async () => "unused");
      return workflow("env_quiet", async () => "done");
    });

    // Act
    const run = await env.start(quiet, []);

    // Assess
    expect(await run.step("env_never_called")).toBeUndefined();
    await expect(run.step("env_nevr_called")).rejects.toThrow(
      `No step named "env_nevr_called" in this test environment, nor in run ${run.runId}'s log: check the name.`,
    );
    await expect(run.step("env_nevr_called")).rejects.toBeInstanceOf(ConfigurationError);
  });

  it("refuses a start time that is not a date, naming it", async () => {
    // Act
    const refused = await createTestEnvironment({ startAt: new Date("next tuesday") }).catch(
      (error: unknown) => error,
    );

    // Assess
    expect(refused).toBeInstanceOf(ConfigurationError);
    expect((refused as Error).message).toContain("startAt must be a valid Date or epoch milliseconds");
  });

  it("skips to the next timer, one at a time, and says when none is left", async () => {
    // Prepare
    const env = await environment();
    const run = await env.start(schedule, []);

    // Act
    const first = await env.skipToNextTimer();
    const second = await env.skipToNextTimer();
    const none = await env.skipToNextTimer();

    // Assess
    expect(first).toEqual(new Date(START + HOUR));
    expect(second).toEqual(new Date(START + HOUR + DAY));
    expect(none).toBeUndefined();
    expect(await run.status()).toBe("completed");
  });

  it("does not move the clock to a timer left behind by a run that has ended", async () => {
    // Prepare
    const env = await environment();
    const answered = await env.start(expense, [1]);
    await answered.sendEvent("approval", { approved: true });
    await env.skip("1d");
    const waiting = await env.start(expense, [2]);

    // Act
    const firedAt = await env.skipToNextTimer();

    // Assess
    expect(await answered.result()).toBe("paid 1");
    expect(firedAt).toEqual(new Date(START + 4 * DAY));
    expect(await waiting.result()).toBe("expired");
    expect(await env.skipToNextTimer()).toBeUndefined();
  });

  it("lets result() skip sleeps, retry delays and timeouts with timeSkipping", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });

    // Act
    const scheduled = await env.start(schedule, []);
    const expired = await env.start(expense, [10]);

    // Assess
    expect(await scheduled.result()).toBe(`done at ${new Date(START + HOUR + DAY).toISOString()}`);
    expect(await expired.result()).toBe("expired");
    expect(env.now().getTime()).toBe(START + 3 * DAY);
  });

  it("lets result() skip to a rate-limited step's turn with timeSkipping: the start beyond the limit comes a period later, real step or fake", async () => {
    for (const variant of ["real", "fake"] as const) {
      // Prepare
      const env = await environment({ timeSkipping: true });
      const { burst, startsAt } = hourlyBurst(env, variant);

      // Act
      const run = await env.start(burst, []);
      const result = await run.result();

      // Assess
      expect(result).toEqual([0, 1, 2].map((index) => `${variant} ${index}`));
      expect(startsAt.slice(0, 2)).toEqual([0, 0]);
      expect(startsAt[2]).toBeGreaterThanOrEqual(HOUR);
      expect(startsAt[2]).toBeLessThan(HOUR + 1_000);
    }
  }, 10_000);

  it("starts a rate-limited step's call beyond the limit when env.skip reaches its turn, and says result() waits for the clock before", async () => {
    // Prepare
    const env = await environment();
    const { burst, startsAt } = hourlyBurst(env);
    const run = await env.start(burst, []);
    const early = (await run.result().catch((caught: unknown) => caught)) as Error;

    // Act
    await env.skip("59m");
    const before = [...startsAt];
    await env.skip("2m");

    // Assess
    expect(before).toEqual([0, 0]);
    expect(startsAt).toHaveLength(3);
    expect(await run.result()).toEqual(["real 0", "real 1", "real 2"]);
    expect(early).toBeInstanceOf(InvalidRunStateError);
    expect(early.message).toContain(
      `Run ${run.runId} of env_hourly_burst is running and will not finish by itself until the clock moves: its next timer is due in 1h`,
    );
  }, 10_000);

  it("settles result() of several runs awaited at once with timeSkipping, whether they sleep for different or equal times", async () => {
    for (const minutes of [
      [5, 1, 4, 2, 3],
      [3, 3, 3, 3, 3],
      [1, 1, 2, 2, 3],
    ]) {
      // Prepare
      const env = await environment({ timeSkipping: true });
      const runs = await Promise.all(minutes.map((sleepFor) => env.start(nap, [sleepFor])));

      // Act: each result() moves the clock in turn; the others' runs wake on the way
      const results = await Promise.all(runs.map((run) => run.result()));

      // Assess
      expect(results).toEqual(
        minutes.map((sleepFor) => `woke at ${new Date(START + sleepFor * MINUTE).toISOString()}`),
      );
      expect(env.now().getTime()).toBe(START + Math.max(...minutes) * MINUTE);
    }
  });

  it("moves the clock with result() only as far as the awaited runs need, when another result() woke them first", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const [first, second] = await Promise.all([env.start(nap, [1]), env.start(nap, [1])]);
    const later = await env.start(nap, [24 * 60]);

    // Act
    await Promise.all([first.result(), second.result()]);

    // Assess
    expect(env.now().getTime()).toBe(START + MINUTE);
    expect(await later.status()).toBe("suspended");
  });

  it("waits for the test's own actions before result() moves the clock", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const run = await env.start(expense, [20]);

    // Act
    const result = run.result();
    await run.sendEvent("approval", { approved: true });

    // Assess
    expect(await result).toBe("paid 20");
    expect(env.now().getTime()).toBe(START);
  });
});

describe("createTestEnvironment: results and failures", () => {
  it("rejects result() with the workflow's own error, and the run's timeline after its message", async () => {
    // Prepare
    const env = await environment({
      steps: {
        env_charge: async () => {
          throw new FatalError("card declined");
        },
      },
    });
    const run = await env.start(checkout, ["o-4", 5]);

    // Act
    const error = (await run.result().catch((caught: unknown) => caught)) as FatalError;

    // Assess
    expect(error).toBeInstanceOf(FatalError);
    expect(error).toMatchObject({ name: "FatalError", code: "FATAL" });
    const [first, , headline, ...lines] = error.message.split("\n");
    expect(first).toBe("card declined");
    expect(headline).toBe(`Run ${run.runId} of env_checkout failed: FatalError: card declined`);
    expect(lines.map((line) => line.trim().split(/\s+/)[2])).toEqual([
      "workflow_started",
      "step_started",
      "step_failed",
      "workflow_failed",
    ]);
    expect(error.stack).toContain("step_failed");
  });

  it("rejects result() of a run that waits for a timer without timeSkipping, saying how to move the clock", async () => {
    // Prepare
    const env = await environment();
    const run = await env.start(schedule, []);

    // Act
    const error = (await run.result().catch((caught: unknown) => caught)) as Error;

    // Assess
    expect(error).toBeInstanceOf(InvalidRunStateError);
    expect(error.message).toContain(
      `Run ${run.runId} of env_schedule is suspended and will not finish by itself until the clock moves: its next timer is due in 1h on the virtual clock (${new Date(START + HOUR).toISOString()}).`,
    );
    expect(error.message).toContain("env.skip(duration) or env.skipToNextTimer()");
    expect(error.message).toContain("sleep_created");
    expect(await run.status()).toBe("suspended");
  });

  it("rejects result() of a run that waits for an event, naming the event, even with timeSkipping", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const waiting = env.define(() => workflow("env_waiting", async () => waitForEvent<string>("go")));
    const run = await env.start(waiting, []);

    // Act
    const error = (await run.result().catch((caught: unknown) => caught)) as Error;

    // Assess
    expect(error).toBeInstanceOf(InvalidRunStateError);
    expect(error.message).toContain("nothing in this test environment moves it on");
    expect(error.message).toContain('waiting for event "go"');
  });

  it("gives up result() of a run that sleeps in a loop forever after maxSkippedTimers timers, saying so", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true, maxSkippedTimers: 50 });
    const forever = env.define(() =>
      workflow("env_forever", async () => {
        for (;;) await sleep("1d");
      }),
    );
    const run = await env.start(forever, []);

    // Act
    const error = (await run.result().catch((caught: unknown) => caught)) as Error;

    // Assess
    expect(error).toBeInstanceOf(InvalidRunStateError);
    expect(error.message).toContain(
      `Run ${run.runId} of env_forever has not finished after result() let 50 timers pass (the virtual clock went from ${new Date(START).toISOString()} to ${new Date(START + 50 * DAY).toISOString()}): its workflow may never end`,
    );
    expect(error.message).toContain("raise createTestEnvironment({ maxSkippedTimers })");
    expect(await run.status()).toBe("suspended");
  });

  it("refuses a maxSkippedTimers that is not a whole number of timers", async () => {
    await expect(createTestEnvironment({ maxSkippedTimers: 0 })).rejects.toThrow(
      "createTestEnvironment(): maxSkippedTimers must be an integer >= 1, got 0.",
    );
  });

  it("rejects result() of a cancelled run with CancelledError naming the reason", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const run = await env.start(schedule, []);

    // Act
    await run.cancel("not needed any more");

    // Assess
    expect(await run.status()).toBe("cancelled");
    const error = (await run.result().catch((caught: unknown) => caught)) as Error;
    expect(error).toBeInstanceOf(CancelledError);
    expect(error.message.split("\n")[0]).toBe(
      `Run ${run.runId} of env_schedule was cancelled: not needed any more`,
    );
  });
});

describe("createTestEnvironment: events and webhooks", () => {
  it("calls a webhook through the servers' handler: 202 once, 409 after, 404 for a token it does not know", async () => {
    // Prepare
    const env = await environment();
    const run = await env.start(approvalOrder, ["order-1", "https://shop.example"]);
    const url = (await run.step(requestApproval))?.input[1] as string;

    // Act
    const first = await run.callWebhook(url, { approved: true, by: "ada" });
    const again = await run.callWebhook(new URL(url).pathname, { approved: false, by: "eve" });
    const unknown = await run.callWebhook(`${run.runId}.forged`, { approved: true, by: "mallory" });

    // Assess
    expect(first).toEqual({ status: 202, body: { ok: true, runId: run.runId } });
    expect(again).toMatchObject({ status: 409, body: { code: "ALREADY_CALLED" } });
    expect(unknown).toMatchObject({ status: 404, body: { code: "UNKNOWN_TOKEN" } });
    expect(await run.result()).toMatchObject({ status: "fulfilled", approvedBy: "ada" });
  });

  it("refuses a webhook body that fails its schema with 400 INVALID_PAYLOAD, and the run takes a good call after it", async () => {
    // Prepare
    const env = await environment();
    const run = await env.start(approvalOrder, ["order-2", "https://shop.example"]);
    const url = (await run.step(requestApproval))?.input[1] as string;

    // Act
    const refused = await run.callWebhook(url, { approved: "yes" });
    const statusAfterRefusal = await run.status();
    const accepted = await run.callWebhook(url, { approved: true, by: "ada" });

    // Assess
    expect(refused).toMatchObject({ status: 400, body: { ok: false, code: "INVALID_PAYLOAD" } });
    expect(refused.body.error).toContain("approved: Invalid input: expected boolean, received string");
    expect(statusAfterRefusal).toBe("suspended");
    expect(accepted.status).toBe(202);
    expect(await run.result()).toMatchObject({ status: "fulfilled", approvedBy: "ada" });
  });

  it("delivers an event with a signal id once", async () => {
    // Prepare
    const env = await environment();
    const run = await env.start(expense, [30]);

    // Act
    const first = await run.sendEvent("approval", { approved: false }, { signalId: "decision-1" });
    const repeated = await run
      .sendEvent("approval", { approved: true }, { signalId: "decision-1" })
      .catch((error: unknown) => error);

    // Assess
    expect(first).toEqual({ delivered: true });
    expect(repeated).toBeInstanceOf(InvalidRunStateError);
    expect(await run.result()).toBe("rejected");
    expect((await run.events()).filter((event) => event.type === "hook_received")).toHaveLength(1);
  });
});

describe("createTestEnvironment: other runs", () => {
  it("gives a handle on a child run by the id in its parent's log", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const { parent } = env.define(() => {
      const child = workflow("env_child", async (n: number) => {
        await sleep("1h");
        return n * 2;
      });
      return { parent: workflow("env_parent", async (n: number) => (await runChild(child, [n])) + 1) };
    });
    const run = await env.start(parent, [20]);

    // Act
    const started = (await run.events()).find((event) => event.type === "child_started");
    const child = env.getHandle<number>(started?.type === "child_started" ? started.childRunId : "none");

    // Assess
    expect(await child.status()).toBe("suspended");
    expect(await child.result()).toBe(40);
    expect(await run.result()).toBe(41);
  });

  it("describes a run as getRun does, so a continueAsNew chain is followed through describe().continuedAs", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const ledger = env.define(() =>
      workflow("env_ledger", async (balance: number, generation: number): Promise<number> => {
        for (let i = 0; i < 2; i += 1) balance += await waitForEvent<number>("deposit");
        return generation < 2 ? continueAsNew(balance, generation + 1) : balance;
      }),
    );
    const first = await env.start(ledger, [0, 0], { tags: { account: "acc-1" } });
    for (const amount of [10, 20, 30, 40, 50, 60]) await first.sendEvent("deposit", amount);

    // Act
    // As docs/testing.md shows it.
    const chain = [await first.describe()];
    for (let next = chain[0]?.continuedAs; next; next = chain.at(-1)?.continuedAs)
      chain.push(await env.getHandle(next).describe());

    // Assess
    expect(chain.map((run) => [run.status, run.continuedFrom, run.continuedAs])).toEqual([
      ["continued", undefined, chain[1]?.runId],
      ["continued", chain[0]?.runId, chain[2]?.runId],
      ["completed", chain[1]?.runId, undefined],
    ]);
    for (const run of chain) expect(run).toEqual(await env.runtime.getRun(run.runId));
    expect(chain[2]).toMatchObject({ result: 210, input: [100, 2], tags: { account: "acc-1" } });
    expect(await first.result()).toBe(210);
    expect(() => env.getHandle(chain[2]?.continuedAs as string)).toThrow(InvalidRunIdError);
  });

  it("runs the runs that application code starts through the top-level API, once configured with env.runtime", async () => {
    // Prepare
    const env = await createTestEnvironment({ timeSkipping: true, startAt: START });
    configure({ runtime: env.runtime });
    const placeOrder = async (orderId: string) => start(approvalOrder, [orderId, "https://shop.example"]);

    try {
      // Act
      const runId = await placeOrder("order-api");
      await sendEvent(runId, "approval", { approved: true, by: "api" });
      const run = env.getHandle<ApprovalResult>(runId);

      // Assess
      expect(await run.result()).toMatchObject({
        orderId: "order-api",
        status: "fulfilled",
        approvedBy: "api",
      });
    } finally {
      await shutdown();
    }
  });
});

describe("createTestEnvironment: storage", () => {
  it("runs on a FileStorage when asked, writes the run's log to its directory and releases it on close", async () => {
    // Prepare
    const dir = tempDir();
    const env = await createTestEnvironment({ storage: new FileStorage({ dir }), timeSkipping: true });

    // Act
    const run = await env.start(schedule, []);
    const result = await run.result();
    await env.close();

    // Assess
    expect(result).toMatch(/^done at /);
    const file = join(dir, "runs", `${run.runId}.jsonl`);
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file, "utf8")).toContain('"type":"workflow_completed"');
    const reopened = new FileStorage({ dir });
    expect((await reopened.getRun(run.runId))?.status).toBe("completed");
    await reopened.close();
  });

  it("refuses start, skip and a waiting run's sendEvent and result after close with RuntimeClosedError, and writes nothing more to its directory", async () => {
    // Prepare
    const dir = tempDir();
    const env = await createTestEnvironment({
      storage: new FileStorage({ dir }),
      startAt: START,
      timeSkipping: true,
    });
    const waiting = await env.start(expense, [40]);
    const done = await env.start(checkout, ["order-9", 9]);
    await env.close();
    const runs = readdirSync(join(dir, "runs")).sort();
    const log = readFileSync(join(dir, "runs", `${waiting.runId}.jsonl`), "utf8");
    // Act
    const attempts = {
      start: env.start(expense, [50]),
      skip: env.skip("1h"),
      sendEvent: waiting.sendEvent("approval", { approved: true }),
      result: waiting.result(),
    };
    // Assess
    for (const [what, attempt] of Object.entries(attempts))
      await expect(attempt, what).rejects.toThrow(RuntimeClosedError);
    await expect(env.start(expense, [50])).rejects.toThrow("Create a new one with createTestEnvironment()");
    expect(await done.result()).toEqual({ orderId: "order-9", chargeId: "real-order-9-9" });
    expect(await waiting.status()).toBe("suspended");
    expect(readdirSync(join(dir, "runs")).sort()).toEqual(runs);
    expect(readFileSync(join(dir, "runs", `${waiting.runId}.jsonl`), "utf8")).toBe(log);
  });

  it("resumes the runs an earlier environment left in the same storage, as a restarted worker would", async () => {
    // Prepare
    const dir = tempDir();
    const before = await createTestEnvironment({ storage: new FileStorage({ dir }), startAt: START });
    const { runId } = await before.start(schedule, []);
    await before.skip("2h");
    const leftAt = before.now();
    await before.close();

    // Act
    const after = await environment({
      storage: new FileStorage({ dir }),
      startAt: leftAt,
      timeSkipping: true,
    });
    const run = after.getHandle<string>(runId);

    // Assess
    expect(await run.result()).toBe(`done at ${new Date(START + HOUR + DAY).toISOString()}`);
    expect(await run.step(stampTime)).toMatchObject({ status: "completed", attempts: 1 });
  });

  it("runs a stored run of a workflow it was given in `workflows`, and names a workflow it does not know", async () => {
    // Prepare
    const dir = tempDir();
    const before = await createTestEnvironment({ storage: new FileStorage({ dir }), startAt: START });
    const napper = before.define(() =>
      workflow("env_napper", async () => {
        await sleep("1d");
        return "rested";
      }),
    );
    const { runId } = await before.start(napper, []);
    await before.close();

    // Act
    const blind = await environment({ storage: new FileStorage({ dir }), timeSkipping: true });
    const unknown = (await blind
      .getHandle(runId)
      .result()
      .catch((error: unknown) => error)) as Error;
    await blind.close();
    const told = await environment({
      storage: new FileStorage({ dir }),
      timeSkipping: true,
      workflows: [napper],
    });

    // Assess
    expect(unknown).toBeInstanceOf(InvalidRunStateError);
    expect(unknown.message).toContain('no workflow "env_napper" is known in this test environment');
    expect(await told.getHandle(runId).result()).toBe("rested");
  });
});

describe("createTestEnvironment: types", () => {
  it("types a handle's result by the workflow, and checks start's arguments like start()", async () => {
    // Prepare
    const env = await environment();

    // Act
    const run = await env.start(approvalOrder, ["order-9", "https://shop.example"]);
    const sent = await run.step(requestApproval);

    // Assess
    expectTypeOf(run).toEqualTypeOf<RunHandle<ApprovalResult>>();
    expectTypeOf(run.result).returns.resolves.toEqualTypeOf<ApprovalResult>();
    expectTypeOf(sent?.input).toEqualTypeOf<[string, string] | undefined>();
    expectTypeOf(sent?.result).toEqualTypeOf<{ orderId: string; sentTo: string; url: string } | undefined>();
    expect(sent?.input[0]).toBe("order-9");
    const typoed = () => {
      // @ts-expect-error an order id is a string
      void env.start(approvalOrder, [9, "https://shop.example"]);
      // @ts-expect-error the base URL is missing
      void env.start(approvalOrder, ["order-9"]);
      // @ts-expect-error a fake returns what the step returns
      env.fakeStep(fulfil, async (orderId) => ({ orderId, shipped: "yes" }));
    };
    expect(typoed).toBeTypeOf("function");
  });

  it("types a Date from a step, a child run and the workflow as the ISO string that arrives", async () => {
    // Prepare
    const env = await environment({ timeSkipping: true });
    const { when, dated } = env.define(() => {
      const when = step("env_when", async () => new Date("2030-01-01T00:00:00.000Z"));
      const born = workflow("env_born", async () => new Date("2001-02-03T04:05:06.000Z"));
      const dated = workflow("env_dated", async () => ({
        step: await when(),
        child: await runChild(born, []),
        now: now(),
      }));
      return { when, dated };
    });

    // Act
    const run = await env.start(dated, []);
    const result = await run.result();
    const called = await run.step(when);

    // Assess
    expectTypeOf(result).toEqualTypeOf<{ step: string; child: string; now: string }>();
    expectTypeOf(called?.result).toEqualTypeOf<string | undefined>();
    expect(result).toEqual({
      step: "2030-01-01T00:00:00.000Z",
      child: "2001-02-03T04:05:06.000Z",
      now: new Date(START).toISOString(),
    });
    expect(called?.result).toBe("2030-01-01T00:00:00.000Z");
    const typoed = async () => {
      // @ts-expect-error the step's Date arrives as its ISO string, which has no getTime
      (await when()).getTime();
    };
    expect(typoed).toBeTypeOf("function");
  });

  it("types an event's payload by its schema, or without one as what arrives of the Date sent", async () => {
    // Prepare
    const env = await environment();
    const stamped = env.define(() =>
      workflow("env_stamped", async () => {
        const sent = await waitForEvent<{ at: Date }>("sent");
        const parsed = await waitForEvent("parsed", { schema: z.object({ at: z.coerce.date() }) });
        return { sent: sent.at, parsedYear: parsed.at.getUTCFullYear() };
      }),
    );

    // Act
    const run = await env.start(stamped, []);
    await run.sendEvent("sent", { at: new Date("2040-01-01T00:00:00.000Z") });
    await run.sendEvent("parsed", { at: new Date("2050-01-01T00:00:00.000Z") });
    const result = await run.result();

    // Assess
    expectTypeOf(result).toEqualTypeOf<{ sent: string; parsedYear: number }>();
    expect(result).toEqual({ sent: "2040-01-01T00:00:00.000Z", parsedYear: 2050 });
    const webhooks = () => {
      const sent = createWebhook<{ at: Date }>();
      const parsed = createWebhook({ schema: z.object({ at: z.coerce.date() }) });
      expectTypeOf(sent.wait).returns.resolves.toEqualTypeOf<{ at: string }>();
      expectTypeOf(parsed.wait).returns.resolves.toEqualTypeOf<{ at: Date }>();
    };
    expect(webhooks).toBeTypeOf("function");
  });

  it("types the result of a workflow that returns nothing as the null that arrives", async () => {
    // Prepare
    const env = await environment();
    const quiet = env.define(() => workflow("env_quiet", async () => {}));

    // Act
    const result = await (await env.start(quiet, [])).result();

    // Assess
    expectTypeOf(result).toEqualTypeOf<null>();
    expect(result).toBeNull();
  });
});
