import {
  CancelledError,
  configureLogging,
  continueAsNew,
  FatalError,
  NonDeterminismError,
  now,
  type RequireJsonParameters,
  random,
  runChild,
  sleep,
  step,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import {
  createTestEnvironment,
  Registry,
  ReplayMismatchError,
  type TestEnvironment,
} from "tsworkflow/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type OtherValues,
  REPLAY_PASSES,
  withOtherClockAndRandom,
} from "../../lib/testing/other-clock-and-random.ts";

const DAY = 24 * 3_600_000;

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

const executions = new Map<string, number>();
function counted<Args extends unknown[]>(name: string) {
  const count = async (...args: Args) => {
    executions.set(name, (executions.get(name) ?? 0) + 1);
    return args;
  };
  // A step for parameters of any type passes the JSON check on to its callers (README, "Results come back as JSON").
  return step(name, count as typeof count & RequireJsonParameters<"step", Args>);
}

const record = counted<[number]>("rpc_record");
const heads = counted<[]>("rpc_heads");
const tails = counted<[]>("rpc_tails");
const stamp = counted<[string]>("rpc_stamp");

/** Passes its start time to a step: another value on every replay. */
const stamped = workflow("rpc_stamped", async () => {
  await record(Date.now());
  await sleep("1h");
  return "ok";
});

/** Calls one step or another on a coin flip. */
const coinFlip = workflow("rpc_coin_flip", async () => {
  await sleep("1m");
  if (Math.random() < 0.5) await heads();
  else await tails();
  return "flipped";
});

/** The same, replay-safe: now() and random() give the same values on every replay. */
const replaySafe = workflow("rpc_replay_safe", async () => {
  await record(now().getTime());
  await sleep("1h");
  if (random() < 0.5) await heads();
  else await tails();
  await stamp(now().toISOString());
  return "safe";
});

/** Returns how long it slept as measured on the real clock: another value on every replay. */
const timed = workflow("rpc_timed", async () => {
  const start = Date.now();
  await sleep("1h");
  return { sleptMs: Date.now() - start };
});

/** Returns a random number first, then a long text: the message shows the first 200 characters. */
const lucky = workflow("rpc_lucky", async () => ({ draw: Math.random(), padding: "x".repeat(300) }));

/** Fails with the time in its error. */
const stampedFailure = workflow("rpc_stamped_failure", async () => {
  await sleep("1m");
  throw new FatalError(`gave up at ${Date.now()}`);
});

/** Goes on as a new run that gets the time it continued at: another input on every replay. */
const restamped = workflow("rpc_restamped", async (continuedAt: number | null) => {
  if (continuedAt !== null) return "continued";
  await sleep("1m");
  return continueAsNew(Date.now());
});

/** Results and errors computed with now() and random(): the same on every replay. */
const safeEnds = workflow("rpc_safe_ends", async (fail: boolean) => {
  const start = now().getTime();
  await sleep("1h");
  const ending = { sleptMs: now().getTime() - start, draw: random() };
  if (fail) throw new FatalError(`gave up after ${JSON.stringify(ending)}`);
  return ending;
});

let env: TestEnvironment | undefined;
afterEach(async () => {
  await env?.close().catch(() => {}); // each test closes (and checks) its environment itself
  env = undefined;
  executions.clear();
});

describe("createTestEnvironment: the replay check", () => {
  it("fails result() of a run that passes Date.now() to a step, naming the call, the event and what to use instead", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true });
    const run = await env.start(stamped, []);
    // Act
    const error = await run.result().catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(ReplayMismatchError);
    const { message, code, runId, seq } = error as ReplayMismatchError;
    expect({ code, runId, seq }).toEqual({ code: "REPLAY_MISMATCH", runId: run.runId, seq: 2 });
    expect(message).toMatch(
      new RegExp(
        `^Run ${run.runId} of rpc_stamped is completed in this test environment, but a replay of its log with the same code parts from it at event 2: The log has step "rpc_record" \\(rpc_record#0\\) called with \\[\\d+\\] but the workflow now calls it with \\[\\d+\\]`,
      ),
    );
    expect(message).toContain(
      'uses Date.now(), new Date() or Math.random(), whose values differ on replay (this check replays with other ones). Use now() and random() from "tsworkflow" instead',
    );
    expect(message).toContain("createTestEnvironment({ replayCheck: false })");
    expect(message).toMatch(/ {5}2 {2}\+0ms {6}step_started {8}rpc_record#0 attempt 1/); // the timeline
    // The same code replays: the cause is the workflow's non-determinism, not a change of code to guard.
    expect(message).toMatch(
      /but the workflow now calls it with \[\d+\]\.\n\nThe code did not change between/,
    );
    expect(message).toContain(
      "The code did not change between the run and its replay: the cause is non-determinism in the workflow code, not a code change.",
    );
    expect(message).not.toContain("no longer matches this run's event log");
    expect(message).not.toContain("patched()");
    expect(executions.get("rpc_record")).toBe(1); // the replay ran no step
    await expect(env.close()).resolves.toBeUndefined(); // reported once
  });

  it("fails every run that branches on Math.random(), whichever side the run took", async () => {
    // Prepare
    const flips = await createTestEnvironment({ timeSkipping: true });
    env = flips;
    const runs = await Promise.all(Array.from({ length: 12 }, () => flips.start(coinFlip, [])));
    // Act
    await flips.skip("1m"); // result() one by one after that: each finds its run finished
    const errors: unknown[] = [];
    for (const run of runs) errors.push(await run.result().catch((caught: unknown) => caught));
    // Assess
    expect((executions.get("rpc_heads") ?? 0) + (executions.get("rpc_tails") ?? 0)).toBe(12);
    for (const error of errors) {
      expect(error).toBeInstanceOf(ReplayMismatchError);
      expect((error as Error).message).toMatch(
        /at event 6: The log has step "rpc_(heads|tails)" \(rpc_\1#0\) as call 2 but the workflow now calls step "rpc_(?!\1)(heads|tails)"/,
      );
    }
  });

  it("fails result() of a run that returns a time measured with Date.now(), naming the recorded and the replayed result", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true });
    const run = await env.start(timed, []);
    // Act
    const error = await run.result().catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(ReplayMismatchError);
    const { message, runId, seq } = error as ReplayMismatchError;
    const completed = (await run.events()).findLast((event) => event.type === "workflow_completed");
    expect({ runId, seq }).toEqual({ runId: run.runId, seq: completed?.seq });
    const [, recorded, replayed] =
      /parts from it at event \d+: The log ends with the result \{"sleptMs":(-?\d+)\} but the replay ends with the result \{"sleptMs":(-?\d+)\}\./.exec(
        message,
      ) ?? [];
    expect(Number(recorded)).toBeLessThan(60_000); // the real clock: milliseconds, not the hour slept
    expect(replayed).not.toBe(recorded);
    expect(message).toContain('Use now() and random() from "tsworkflow" instead');
    await expect(env.close()).resolves.toBeUndefined(); // reported once
  });

  it("fails a run that returns Math.random(), showing the first 200 characters of each result", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true });
    const run = await env.start(lucky, []);
    // Act
    const error = await run.result().catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(ReplayMismatchError);
    const { message } = error as Error;
    const [, recorded, replayed] =
      /The log ends with the result (\S+) but the replay ends with the result (\S+)\./.exec(message) ?? [];
    expect(recorded).toMatch(/^\{"draw":0\.\d+,"padding":"x+…$/);
    expect(replayed).toMatch(/^\{"draw":0,"padding":"x+…$/); // Math.random() at its lowest
    expect([recorded?.length, replayed?.length]).toEqual([200, 200]);
  });

  it("fails a failed run whose error message has Date.now() in it, naming both errors", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true });
    const run = await env.start(stampedFailure, []);
    // Act
    const error = await run.result().catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(ReplayMismatchError);
    expect((error as Error).message).toMatch(
      /is failed in this test environment, but a replay of its log with the same code parts from it at event \d+: The log ends with the error FatalError: gave up at (\d+) but the replay ends with the error FatalError: gave up at (?!\1)\d+\./,
    );
  });

  it("fails a run that continues as new with Date.now(), naming both inputs, and passes the run it continued as", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true });
    const run = await env.start(restamped, [null]);
    // Act
    const error = await run.result().catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(ReplayMismatchError);
    expect((error as ReplayMismatchError).runId).toBe(run.runId);
    expect((error as Error).message).toMatch(
      /is continued in this test environment, but a replay of its log with the same code parts from it at event \d+: The log ends with continueAsNew with \[(\d+)\] but the replay ends with continueAsNew with \[(?!\1\])\d+\]\./,
    );
    const next = env.getHandle<string>((await run.describe()).continuedAs as string);
    expect(await next.result()).toBe("continued");
    await expect(env.close()).resolves.toBeUndefined();
  });

  it("passes runs whose result and error are computed with now() and random()", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true });
    const completed = await env.start(safeEnds, [false]);
    const failed = await env.start(safeEnds, [true]);
    // Act
    const result = await completed.result();
    const error = await failed.result().catch((caught: unknown) => caught);
    // Assess
    expect(result).toEqual({ sleptMs: 3_600_000, draw: expect.any(Number) });
    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toMatch(/^gave up after \{"sleptMs":3600000,"draw":0\.\d+\}/);
    await expect(env.close()).resolves.toBeUndefined();
  });

  it("passes a run that uses now() and random(), running each of its steps once", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true });
    // Act
    const run = await env.start(replaySafe, []);
    // Assess
    expect(await run.result()).toBe("safe");
    await expect(env.close()).resolves.toBeUndefined();
    const calls = [...executions.values()];
    expect(calls).toEqual([1, 1, 1]); // rpc_record, one of rpc_heads and rpc_tails, rpc_stamp
  });

  it("lets a test turn the check off with replayCheck: false", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true, replayCheck: false });
    // Act
    const run = await env.start(stamped, []);
    // Assess
    expect(await run.result()).toBe("ok");
    await expect(env.close()).resolves.toBeUndefined();
  });

  it("fails close() for a run that no result() looked at, closes the environment all the same, and says it once", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true });
    const run = await env.start(stamped, []);
    const other = await env.start(stamped, []);
    await env.skip("1h");
    expect(await run.status()).toBe("completed");
    // Act
    const error = await env.close().catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(ReplayMismatchError);
    expect((error as ReplayMismatchError).runId).toBe(run.runId);
    expect((error as Error).message).toContain(
      `These runs of the test environment do not replay either: ${other.runId}.`,
    );
    await expect(env.start(stamped, [])).rejects.toThrow("This test environment was closed");
    await expect(env.close()).resolves.toBeUndefined();
  });

  it("checks failed, cancelled and child runs too, and names every run that does not replay", async () => {
    // Prepare
    env = await createTestEnvironment({ timeSkipping: true });
    const failing = env.define(() => {
      const refuse = step("rpc_refuse", async (_at: number) => {
        throw new FatalError("refused");
      });
      return workflow("rpc_failing", async () => {
        await refuse(Date.now());
      });
    });
    const waiting = env.define(() =>
      workflow("rpc_waiting", async () => {
        try {
          await waitForEvent("never");
        } finally {
          await record(Date.now());
        }
      }),
    );
    const parent = env.define(() =>
      workflow("rpc_parent", async () => `child said ${await runChild(stamped, [])}`),
    );
    const failed = await env.start(failing, []);
    const cancelled = await env.start(waiting, []);
    await cancelled.cancel("not needed");
    const withChild = await env.start(parent, []);
    // Act
    const failedError = await failed.result().catch((caught: unknown) => caught);
    const cancelledError = await cancelled.result().catch((caught: unknown) => caught);
    const parentResult = await withChild.result();
    const closeError = await env.close().catch((caught: unknown) => caught);
    // Assess
    expect(failedError).toBeInstanceOf(ReplayMismatchError);
    expect((failedError as Error).message).toContain("is failed in this test environment");
    expect(cancelledError).toBeInstanceOf(ReplayMismatchError);
    expect(cancelledError).not.toBeInstanceOf(CancelledError);
    expect(parentResult).toBe("child said ok"); // the parent replays: its child's result is in its log
    expect(closeError).toBeInstanceOf(ReplayMismatchError);
    expect((closeError as Error).message).toContain("of rpc_stamped is completed"); // the child run
  });

  it("leaves a run that failed with NonDeterminismError to that error: changed code, replayed after a restart", async () => {
    // Prepare
    const storage = new MemoryStorage();
    const before = await createTestEnvironment({ storage });
    const run = await before.start(replaySafe, []);
    await before.close({ closeStorage: false });
    const changed = new Registry().define(() =>
      workflow("rpc_replay_safe", async () => {
        await stamp("another first step");
        return "changed";
      }),
    );
    // Act: the restarted runtime replays the run with the changed code
    env = await createTestEnvironment({
      storage,
      workflows: [changed],
      startAt: before.now(),
      timeSkipping: true,
    });
    const error = await env
      .getHandle(run.runId)
      .result()
      .catch((caught: unknown) => caught);
    // Assess
    expect(error).toBeInstanceOf(NonDeterminismError);
    await expect(env.close()).resolves.toBeUndefined();
  });

  it("gives the other clock and random numbers to the replayed code only, the real ones to the rest of the process meanwhile", async () => {
    // Prepare
    const [, later] = REPLAY_PASSES;
    const real = Date.now();
    // Act
    const replayed = withOtherClockAndRandom(later as OtherValues, async () => {
      await new Promise((resolve) => setImmediate(resolve)); // across a turn of the event loop
      return { now: Date.now(), date: new Date(), random: Math.random(), nextRead: Date.now() };
    });
    const outside = { now: Date.now(), date: new Date(), random: Math.random(), text: Date() };
    const { value: inside, read } = await replayed;
    const untouched = await withOtherClockAndRandom(later as OtherValues, async () => "no clock read");
    // Assess
    expect(inside.random).toBe(1 - 2 ** -53);
    expect(inside.now - real).toBeGreaterThan(366 * DAY);
    expect(inside.date.getTime() - real).toBeGreaterThan(366 * DAY);
    expect(inside.nextRead - inside.now).toBeGreaterThan(2 * 366 * DAY); // the clock moves on at each read
    expect(outside.random).toBeLessThan(1 - 2 ** -53);
    expect(Math.abs(outside.now - real)).toBeLessThan(DAY);
    expect(Math.abs(outside.date.getTime() - real)).toBeLessThan(DAY);
    expect(outside.text).toMatch(/GMT/); // Date() without new still gives the text
    expect(new Date(2026, 0, 1)).toBeInstanceOf(Date);
    expect([read, untouched.read]).toEqual([true, false]); // a second pass is needed only after a read
  });

  it("gives Date and Math.random back to the rest of the process", async () => {
    // Prepare
    const { Date: RealDate } = globalThis;
    const realRandom = Math.random;
    env = await createTestEnvironment({ timeSkipping: true });
    // Act
    await env.start(stamped, []);
    await env.close().catch(() => {});
    // Assess
    expect(globalThis.Date).toBe(RealDate);
    expect(Math.random).toBe(realRandom);
  });
});
