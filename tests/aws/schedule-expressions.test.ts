import { CreateScheduleCommand, SchedulerClient } from "@aws-sdk/client-scheduler";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { recurringScheduleRequest } from "../../lib/adapters/aws/eventbridge-schedules.ts";
import { eventBridgeCron, eventBridgeRate } from "../../lib/adapters/aws/schedule-expressions.ts";
import { awsSchedules } from "../../lib/aws/schedules.ts";
import { UnsupportedScheduleError } from "../../lib/core/errors.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { schedule } from "../../lib/schedules/schedule.ts";
import { FakeScheduler } from "./harness/fake-scheduler.ts";
import { TEST_CREDENTIALS, TEST_REGION } from "./harness/free-port.ts";

const noop = workflow("schedule_expressions_noop", async () => "done");

describe("EventBridge cron expressions", () => {
  it.each([
    ["0 9 * * MON-FRI", "cron(0 9 ? * MON-FRI *)"],
    ["*/15 * * * *", "cron(0/15 * * * ? *)"],
    ["30 2 1 * *", "cron(30 2 1 * ? *)"],
    ["0 0 L * *", "cron(0 0 L * ? *)"],
    ["0 8 * * 1-5", "cron(0 8 ? * 2-6 *)"],
    ["0 8 * * 0", "cron(0 8 ? * 1 *)"],
    ["0 8 * * 7", "cron(0 8 ? * 1 *)"],
    ["0 8 * * 5-7", "cron(0 8 ? * 6-7,1 *)"],
    ["0 8 * * 0,3", "cron(0 8 ? * 1,4 *)"],
    ["0 8 * * */2", "cron(0 8 ? * 1/2 *)"],
    ["0 8 * * 5L", "cron(0 8 ? * 6L *)"],
    ["0 8 * * 1#2", "cron(0 8 ? * 2#2 *)"],
    ["0 0 9 * * mon", "cron(0 9 ? * MON *)"],
    ["@daily", "cron(0 0 * * ? *)"],
    ["@weekly", "cron(0 0 ? * 1 *)"],
    ["0 12 1-15 1,7 *", "cron(0 12 1-15 1,7 ? *)"],
  ])("writes %s as %s", (cron, expected) => {
    expect(eventBridgeCron("report", cron)).toBe(expected);
  });

  it("refuses an expression that restricts both the day of the month and the day of the week, naming the schedule", () => {
    expect(() => eventBridgeCron("payday", "0 9 1 * MON")).toThrow(UnsupportedScheduleError);
    expect(() => eventBridgeCron("payday", "0 9 1 * MON")).toThrow(
      /Schedule "payday".*both the day of the month \(1\) and the day of the week \(MON\).*two schedules/,
    );
  });

  it("refuses a seconds field other than 0", () => {
    expect(() => eventBridgeCron("fast", "*/10 * * * * *")).toThrow(/seconds field/);
  });
});

describe("EventBridge rate expressions", () => {
  it.each([
    [60_000, "rate(1 minute)"],
    [15 * 60_000, "rate(15 minutes)"],
    [3_600_000, "rate(1 hour)"],
    [6 * 3_600_000, "rate(6 hours)"],
    [86_400_000, "rate(1 day)"],
    [90 * 60_000, "rate(90 minutes)"],
  ])("writes every %i ms as %s", (period, expected) => {
    expect(eventBridgeRate("tick", period)).toBe(expected);
  });

  it("refuses an interval that is not a whole number of minutes", () => {
    expect(() => eventBridgeRate("tick", 90_000)).toThrow(UnsupportedScheduleError);
    expect(() => eventBridgeRate("tick", 30_000)).toThrow(/whole minutes/);
  });
});

describe("recurring schedule requests", () => {
  it("carries the time zone, start and end dates, the jitter window and a tick input for the step queue", () => {
    const startAt = new Date("2026-02-01T00:00:00Z");
    const endAt = new Date("2026-12-31T00:00:00Z");
    const definition = schedule("reports:weekday", noop, {
      cron: "0 9 * * MON-FRI",
      timezone: "Europe/Paris",
      startAt,
      endAt,
      jitter: "90s",
    });
    const request = recurringScheduleRequest(definition, {
      stepQueueArn: "arn:aws:sqs:us-east-1:000000000000:steps",
      schedulerRoleArn: "arn:aws:iam::000000000000:role/scheduler",
      scheduleGroup: "tsworkflow",
    });
    expect(request).toMatchObject({
      GroupName: "tsworkflow",
      ScheduleExpression: "cron(0 9 ? * MON-FRI *)",
      ScheduleExpressionTimezone: "Europe/Paris",
      StartDate: startAt,
      EndDate: endAt,
      FlexibleTimeWindow: { Mode: "FLEXIBLE", MaximumWindowInMinutes: 2 },
      ActionAfterCompletion: "NONE",
      Target: {
        Arn: "arn:aws:sqs:us-east-1:000000000000:steps",
        RoleArn: "arn:aws:iam::000000000000:role/scheduler",
      },
    });
    // ":" is not allowed in EventBridge schedule names: a readable prefix and a hash instead.
    expect(request.Name).toMatch(/^schedule\.reports_weekday\.[0-9a-f]{16}$/);
    expect(JSON.parse(request.Target?.Input as string)).toEqual({
      kind: "tick",
      schedule: "reports:weekday",
      scheduledTime: "<aws.scheduler.scheduled-time>",
    });
  });

  it("fails when the schedules are declared for AWS (at cold start), not at the first tick", () => {
    const both = schedule("both-days", noop, { cron: "0 9 1 * MON" });
    expect(() => awsSchedules([both])).toThrow(UnsupportedScheduleError);
    const seconds = schedule("every-90s", noop, { every: "90s" });
    expect(() => awsSchedules([seconds])).toThrow(UnsupportedScheduleError);
  });
});

describe("a year of ticks through the fake EventBridge Scheduler", () => {
  const from = Date.UTC(2026, 0, 1);
  const to = Date.UTC(2027, 0, 1);
  let scheduler: FakeScheduler;
  let client: SchedulerClient;

  // A new fake per expression: each starts its year on 1 January.
  beforeEach(async () => {
    scheduler = new FakeScheduler({ groups: ["tsworkflow"], now: from, deliver: async () => {} });
    client = new SchedulerClient({
      endpoint: await scheduler.start(),
      region: TEST_REGION,
      credentials: TEST_CREDENTIALS,
      maxAttempts: 1,
    });
  });

  afterEach(async () => {
    client?.destroy();
    await scheduler?.stop();
  });

  it.each([
    ["0 9 * * MON-FRI", "Europe/Paris"],
    ["15 */6 * * 0,3", "America/New_York"],
    ["0 12 * * 5-7", "Europe/Paris"],
    ["*/30 9-17 * * 1-5", "America/New_York"],
    ["0 8 1,15 * *", "Asia/Tokyo"],
    ["45 23 L * *", "Australia/Sydney"],
  ])(
    "fires %s in %s at exactly the ticks croner computes from the declaration, both DST switches included",
    async (cron, timezone) => {
      // Prepare
      const definition = schedule(`year-${cron}-${timezone}`.replace(/[^A-Za-z0-9_.:-]/g, "_"), noop, {
        cron,
        timezone,
      });
      const request = recurringScheduleRequest(definition, {
        stepQueueArn: "arn:aws:sqs:us-east-1:000000000000:steps",
        schedulerRoleArn: "arn:aws:iam::000000000000:role/scheduler",
        scheduleGroup: "tsworkflow",
      });
      await client.send(new CreateScheduleCommand({ ...request, State: "ENABLED" }));
      const expected: number[] = [];
      for (
        let tick = definition.nextTick(from);
        tick !== undefined && tick <= to;
        tick = definition.nextTick(tick)
      )
        expected.push(tick);

      // Act: a week at a time.
      for (let time = from; time < to; time += 7 * 86_400_000) await scheduler.advanceTo(Math.min(time, to));
      await scheduler.advanceTo(to);

      // Assess
      const fired = scheduler.invocations
        .filter((entry) => entry.name === request.Name)
        .map((entry) => entry.at);
      expect(fired).toEqual(expected);
      expect(fired.length).toBeGreaterThan(10);
    },
  );
});
