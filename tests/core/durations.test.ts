import { InvalidDurationError, sleep, workflow } from "tsworkflow";
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
});
