import {
  ConfigurationError,
  getStepInfo,
  InvalidDurationError,
  RetryableError,
  sleep,
  step,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { toMilliseconds } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { describe, expect, it } from "vitest";

describe("durations", () => {
  it.each([
    ["500ms", 500],
    ["5s", 5_000],
    ["10m", 600_000],
    ["2h", 7_200_000],
    ["3d", 259_200_000],
    ["1w", 604_800_000],
    ["1.5s", 1_500],
  ])("reads the string %s as %i milliseconds", (text, expected) => {
    // Prepare
    // Act
    const ms = toMilliseconds(text);
    // Assess
    expect(ms).toBe(expected);
  });

  it("reads an object of days, hours, minutes and seconds as their sum", () => {
    // Prepare
    const duration = { days: 1, hours: 2, minutes: 3, seconds: 4 };
    // Act
    const ms = toMilliseconds(duration);
    // Assess
    expect(ms).toBe(86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4_000);
  });

  it("reads an object with a single unit", () => {
    // Prepare
    // Act
    const ms = toMilliseconds({ hours: 2 });
    // Assess
    expect(ms).toBe(7_200_000);
  });

  it("reads a number as milliseconds", () => {
    // Prepare
    // Act
    const ms = toMilliseconds(1_234);
    // Assess
    expect(ms).toBe(1_234);
  });

  it.each([
    ["5 parsecs", '"5 parsecs"'],
    [-1, "-1"],
    [Number.NaN, "NaN"],
    [Number.POSITIVE_INFINITY, "Infinity"],
    [{}, "{}"],
    [{ fortnights: 1 }, '{"fortnights":1}'],
    [{ hours: -2 }, '{"hours":-2}'],
    ["", '""'],
  ])("rejects %s with an InvalidDurationError that names the value", (value, named) => {
    // Prepare
    let caught: unknown;
    // Act
    try {
      toMilliseconds(value as never);
    } catch (error) {
      caught = error;
    }
    // Assess
    expect(caught).toBeInstanceOf(InvalidDurationError);
    expect((caught as InvalidDurationError).name).toBe("InvalidDurationError");
    expect((caught as InvalidDurationError).code).toBe("INVALID_DURATION");
    expect((caught as Error).message).toContain(`Invalid duration ${named}`);
  });

  it("rejects a Date as a length of time, since a Date is a point in time", () => {
    // Prepare
    // Act
    const act = () => toMilliseconds(new Date());
    // Assess
    expect(act).toThrow(InvalidDurationError);
  });

  it("sleeps until a Date as an absolute point in time", async () => {
    // Prepare
    const wakeAt = new Date(Date.now() + 3 * 86_400_000);
    const sleepUntil = workflow("durations_sleep_until_date", async (at: string) => {
      await sleep(new Date(at));
      return "awake";
    });
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(sleepUntil, [wakeAt.toISOString()], { storage, timeSkipping: true });
    // Assess
    const events = await storage.getEvents(runId);
    const created = events.find((e) => e.type === "sleep_created");
    expect(created).toMatchObject({ type: "sleep_created", resumeAt: wakeAt.getTime() });
    expect((await storage.getRun(runId))?.status).toBe("completed");
  });

  it("sleeps for an object duration counted from the time of the call", async () => {
    // Prepare
    const sleepObject = workflow("durations_sleep_object", async () => {
      await sleep({ hours: 2, minutes: 30 });
    });
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(sleepObject, [], { storage, timeSkipping: true });
    // Assess
    const events = await storage.getEvents(runId);
    const created = events.find((e) => e.type === "sleep_created");
    if (created?.type !== "sleep_created") throw new Error("no sleep_created event");
    expect(created.durationMs).toBe(9_000_000);
    expect(created.resumeAt).toBe(Date.parse(created.timestamp) + 9_000_000);
  });

  it("fails the workflow with InvalidDurationError when it sleeps for a bad duration", async () => {
    // Prepare
    const badSleep = workflow("durations_bad_sleep", async () => {
      await sleep("5 parsecs");
    });
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(badSleep, [], { storage, timeSkipping: true });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("failed");
    expect(run?.error?.name).toBe("InvalidDurationError");
    expect(run?.error?.message).toContain('"5 parsecs"');
  });

  it.each([
    ["1e300 ms", 1e300],
    ["2 ** 53 ms", 2 ** 53],
    ['"99999999999d"', "99999999999d"],
    ["{ weeks: 1e12 }", { weeks: 1e12 }],
  ])("rejects %s, past what a Date holds, with an InvalidDurationError", (_label, value) => {
    // Prepare
    // Act
    const act = () => toMilliseconds(value as never);
    // Assess
    expect(act).toThrow(InvalidDurationError);
    expect(act).toThrow("longer than the limit of 1000 years");
  });

  it("accepts a duration of 1000 years, the longest there is", () => {
    // Prepare
    // Act
    const ms = toMilliseconds({ days: 365_250 });
    // Assess
    expect(ms).toBe(365_250 * 86_400_000);
  });

  it.each([
    ["sleep(1e300)", () => sleep(1e300)],
    ["sleep(2 ** 53)", () => sleep(2 ** 53)],
    ['sleep("99999999999d")', () => sleep("99999999999d")],
    ["sleep({ weeks: 1e12 })", () => sleep({ weeks: 1e12 })],
    ["waitForEvent with a timeout of 1e300", () => waitForEvent("never", { timeout: 1e300 })],
  ])(
    "fails the run with InvalidDurationError on %s instead of retrying the activation",
    async (label, wait) => {
      // Prepare
      const huge = workflow(`durations_huge_${label.replace(/[^a-z0-9]/gi, "_")}`, async () => {
        await wait();
      });
      const storage = new MemoryStorage();
      // Act
      const runId = await startLocal(huge, [], { storage, timeSkipping: true });
      // Assess
      const run = await storage.getRun(runId);
      expect(run?.status).toBe("failed");
      expect(run?.error).toMatchObject({ name: "InvalidDurationError", code: "INVALID_DURATION" });
    },
  );

  it("fails a step at once, not retried, when it throws a RetryableError with a retryAfter of 1e300", async () => {
    // Prepare
    const attempts: number[] = [];
    const rateLimited = step("durations_huge_retry_after", async () => {
      attempts.push(getStepInfo()?.attempt ?? 0);
      throw new RetryableError("come back much later", { retryAfter: 1e300 });
    });
    const wf = workflow("durations_huge_retry_after_workflow", async () => rateLimited());
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(wf, [], { storage, timeSkipping: true });
    // Assess
    const run = await storage.getRun(runId);
    expect(attempts).toEqual([1]);
    expect(run?.status).toBe("failed");
    expect(run?.error).toMatchObject({ name: "InvalidDurationError", code: "INVALID_DURATION" });
  });

  it("refuses a step whose retryDelay is 1e300 when it is defined, with a ConfigurationError that says why", () => {
    // Prepare
    // Act
    const define = () => step("durations_huge_retry_delay", async () => 1, { retryDelay: 1e300 });
    // Assess
    expect(define).toThrow(ConfigurationError);
    expect(define).toThrow("got 1e+300 (longer than the limit of 1000 years (31557600000000 ms)).");
  });
});
