import { ProvisionedThroughputExceededException } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import { createTable } from "../../lib/adapters/aws/table-schema.ts";
import { createClient } from "../../lib/aws/client.ts";
import { type AwsSchedules, awsSchedules, type TickMessage } from "../../lib/aws/schedules.ts";
import { main } from "../../lib/cli/main.ts";
import { ConfigurationError } from "../../lib/core/errors.ts";
import { configureLogging, getLogger } from "../../lib/core/logger.ts";
import { sleep, step, workflow } from "../../lib/index.ts";
import { type ScheduleDefinition, schedule, tickKey } from "../../lib/schedules/schedule.ts";
import {
  createKit,
  deployStack,
  type Emulators,
  type Kit,
  SCHEDULE_GROUP,
  type Stack,
  startEmulators,
} from "./harness/aws-stack.ts";
import type { RecordedSchedulerRequest } from "./harness/fake-scheduler.ts";
import { waitFor } from "./harness/wait.ts";

/**
 * Schedules on the AWS emulation: the real sweeper reconciles them with the fake EventBridge Scheduler
 * (the real @aws-sdk/client-scheduler, every request recorded), the fake fires the recurring schedules
 * on its virtual clock, and the real step function starts the ticks' runs in DynamoDB Local.
 */

const MINUTE = 60_000;
let emulators: Emulators;
const stacks: Stack[] = [];

/** Executions of the report step, by label: what really ran, not what the log says. */
const executions = new Map<string, number>();
const recordReport = step("schedules_record_report", async (label: string) => {
  executions.set(label, (executions.get(label) ?? 0) + 1);
  return label;
});
const report = workflow("schedules_report", async (label: string) => recordReport(label));
const slowReport = workflow("schedules_slow_report", async () => {
  await sleep("1h");
  return "late";
});

beforeAll(async () => {
  configureLogging({ level: (process.env.TSW_TEST_LOG as "debug" | undefined) ?? "silent" });
  emulators = await startEmulators("tsworkflow-schedules");
}, 120_000);

afterAll(async () => {
  await Promise.all(stacks.map((stack) => stack.stop()));
  await emulators?.stop();
  configureLogging();
});

let tables = 0;
/** Fresh queues and a fresh table: each test has its own schedule state. */
async function freshKit(): Promise<Kit> {
  const kit = createKit(emulators);
  tables += 1;
  const tableName = `tsworkflow-schedules-${tables}`;
  const admin = emulators.dynamo.client();
  await createTable(admin, tableName);
  admin.destroy();
  kit.config = { ...kit.config, tableName };
  return kit;
}

/** The declared schedules, counting the ticks the step function has handled. */
function counted(
  definitions: ScheduleDefinition[],
  bufferPollSeconds?: number,
): { schedules: AwsSchedules; handled: TickMessage[] } {
  const schedules = awsSchedules(definitions, bufferPollSeconds === undefined ? {} : { bufferPollSeconds });
  const handled: TickMessage[] = [];
  const tick = schedules.tick.bind(schedules);
  return {
    handled,
    schedules: {
      ...schedules,
      reconcile: schedules.reconcile.bind(schedules),
      async tick(runtime, message, now) {
        await tick(runtime, message, now);
        handled.push(message);
      },
    },
  };
}

function deploy(kit: Kit, schedules: AwsSchedules, workflows = [report, slowReport]): Stack {
  const stack = deployStack(emulators, { workflows, schedules }, { kit });
  stacks.push(stack);
  return stack;
}

/** The recurring-schedule requests recorded since `since` (timers' one-time schedules left out). */
function scheduleRequests(since: number): RecordedSchedulerRequest[] {
  return emulators.scheduler.requests.slice(since).filter((request) => request.name.startsWith("schedule."));
}

function clientOf(stack: Stack) {
  return createClient(
    { ...stack.config, scheduleGroup: SCHEDULE_GROUP },
    {
      clients: {
        dynamodb: stack.clients.dynamodb,
        sqs: stack.clients.sqs,
        scheduler: stack.clients.scheduler,
      },
      clock: emulators.clock,
    },
  );
}

async function runKeys(stack: Stack, workflowName: string): Promise<string[]> {
  const page = await stack.store.listRuns({ workflowName, limit: 100 });
  return page.runs.map((run) => run.idempotencyKey ?? "").sort();
}

async function waitForRuns(stack: Stack, workflowName: string, count: number): Promise<void> {
  await waitFor(`${count} finished runs of ${workflowName}`, async () => {
    const page = await stack.store.listRuns({ workflowName, limit: 100 });
    const done = page.runs.filter((run) => run.status === "completed").length;
    return page.runs.length === count && done === count ? true : undefined;
  });
}

/** The ticks of `definition` after `from` up to `to`, as the reference (croner) computes them. */
function ticksBetween(definition: ScheduleDefinition, from: number, to: number): number[] {
  const ticks: number[] = [];
  for (
    let tick = definition.nextTick(from);
    tick !== undefined && tick <= to;
    tick = definition.nextTick(tick)
  )
    ticks.push(tick);
  return ticks;
}

/** Moves the virtual clock (and the fake Scheduler with it) to now, so that a new schedule counts from there. */
async function syncClock(): Promise<number> {
  await emulators.scheduler.advanceTo(emulators.clock.now());
  return emulators.scheduler.now;
}

/**
 * Runs `use` with `tsworkflow <args> --table` against the kit's table, in this process: the SDK reads the
 * Scheduler endpoint and the credentials from the environment, set meanwhile.
 */
async function withCli(
  kit: Kit,
  use: (cli: (...args: string[]) => Promise<number>, out: string[], err: string[]) => Promise<void>,
): Promise<void> {
  const out: string[] = [];
  const err: string[] = [];
  const plain = (text: string) => text;
  const style = {
    bold: plain,
    dim: plain,
    red: plain,
    green: plain,
    yellow: plain,
    status: plain,
  } as never;
  const context = {
    out: (text: string) => out.push(text),
    err: (text: string) => err.push(text),
    style,
    errStyle: style,
    now: () => emulators.clock.now(),
    env: {
      TSWORKFLOW_SCHEDULE_GROUP: SCHEDULE_GROUP,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
    },
  };
  const table = [
    "--table",
    kit.config.tableName,
    "--region",
    kit.config.region,
    "--endpoint",
    emulators.dynamo.endpoint,
  ];
  const saved = { ...process.env };
  Object.assign(process.env, context.env, { AWS_ENDPOINT_URL_SCHEDULER: emulators.scheduler.endpoint });
  try {
    await use((...args) => main([...args, ...table], context as never), out, err);
  } finally {
    process.env = saved;
  }
}

describe("reconciling declared schedules with EventBridge Scheduler", () => {
  it("creates one recurring schedule per declared schedule on the first sweep, and makes no request on later sweeps", async () => {
    // Prepare
    const kit = await freshKit();
    const weekday = schedule("a-weekday", report, {
      cron: "0 9 * * MON-FRI",
      timezone: "Europe/Paris",
      args: ["weekday"],
    });
    const halfHourly = schedule("a-every", report, { every: "30m", args: ["every"], paused: true });
    const stack = deploy(kit, awsSchedules([weekday, halfHourly]));
    const since = emulators.scheduler.requests.length;

    // Act
    const first = await stack.sweep();
    const second = await stack.sweep();

    // Assess
    expect(first.schedules).toEqual({ created: ["a-weekday", "a-every"], updated: [], deleted: [] });
    expect(second.schedules).toEqual({ created: [], updated: [], deleted: [] });
    const target = (name: string) => ({
      Arn: kit.config.stepQueueArn,
      RoleArn: kit.config.schedulerRoleArn,
      Input: JSON.stringify({
        kind: "tick",
        schedule: name,
        scheduledTime: "<aws.scheduler.scheduled-time>",
      }),
      RetryPolicy: { MaximumEventAgeInSeconds: 86_400, MaximumRetryAttempts: 185 },
      DeadLetterConfig: { Arn: kit.config.timerDeadLetterQueueArn },
    });
    expect(scheduleRequests(since)).toEqual([
      {
        operation: "CreateSchedule",
        name: "schedule.a-weekday",
        groupName: SCHEDULE_GROUP,
        status: 200,
        input: {
          ClientToken: expect.any(String),
          GroupName: SCHEDULE_GROUP,
          Description: "tsworkflow schedule a-weekday: starts schedules_report",
          ScheduleExpression: "cron(0 9 ? * MON-FRI *)",
          ScheduleExpressionTimezone: "Europe/Paris",
          FlexibleTimeWindow: { Mode: "OFF" },
          ActionAfterCompletion: "NONE",
          State: "ENABLED",
          Target: target("a-weekday"),
        },
      },
      {
        operation: "CreateSchedule",
        name: "schedule.a-every",
        groupName: SCHEDULE_GROUP,
        status: 200,
        input: {
          ClientToken: expect.any(String),
          GroupName: SCHEDULE_GROUP,
          Description: "tsworkflow schedule a-every: starts schedules_report",
          ScheduleExpression: "rate(30 minutes)",
          ScheduleExpressionTimezone: "UTC",
          FlexibleTimeWindow: { Mode: "OFF" },
          ActionAfterCompletion: "NONE",
          State: "DISABLED",
          Target: target("a-every"),
        },
      },
    ]);
  });

  it("on the first sweep after a deploy, deletes a removed schedule, updates a changed one, creates a new one and keeps a pause", async () => {
    // Prepare
    const kit = await freshKit();
    const keep = schedule("b-keep", report, { cron: "0 * * * *", args: ["keep"] });
    const before = deploy(
      kit,
      awsSchedules([
        keep,
        schedule("b-change", report, { cron: "0 6 * * *", args: ["change"] }),
        schedule("b-gone", report, { every: "1h", args: ["gone"] }),
      ]),
    );
    await before.sweep();
    await clientOf(before).pauseSchedule("b-keep");
    await before.stop();
    const since = emulators.scheduler.requests.length;

    // Act: the new code changes one schedule, removes one, adds one.
    const after = deploy(
      kit,
      awsSchedules([
        keep,
        schedule("b-change", report, { cron: "0 7 * * *", args: ["change"] }),
        schedule("b-new", report, { every: "2h", args: ["new"] }),
      ]),
    );
    const result = await after.sweep();

    // Assess
    expect(result.schedules).toEqual({ created: ["b-new"], updated: ["b-change"], deleted: ["b-gone"] });
    const requests = scheduleRequests(since);
    expect(requests.map(({ operation, name, status }) => ({ operation, name, status }))).toEqual([
      { operation: "DeleteSchedule", name: "schedule.b-gone", status: 200 },
      { operation: "UpdateSchedule", name: "schedule.b-change", status: 200 },
      { operation: "CreateSchedule", name: "schedule.b-new", status: 200 },
    ]);
    expect(requests[1]?.input).toMatchObject({ ScheduleExpression: "cron(0 7 * * ? *)", State: "ENABLED" });
    expect(requests[2]?.input).toMatchObject({ ScheduleExpression: "rate(2 hours)", State: "ENABLED" });
    const live = Object.fromEntries(
      emulators.scheduler
        .list()
        .filter((entry) => entry.name.startsWith("schedule.b-"))
        .map((entry) => [entry.name, entry.state]),
    );
    expect(live).toEqual({
      "schedule.b-keep": "DISABLED",
      "schedule.b-change": "ENABLED",
      "schedule.b-new": "ENABLED",
    });
  });
});

describe("the declarations in the schedule state", () => {
  it("are stored by the sweep, so that schedules list --table shows when each ticks, and are added to state stored without them with no Scheduler request", async () => {
    // Prepare: state as a version that kept no declaration left it (and its hash of the declarations).
    const kit = await freshKit();
    const hourly = schedule("d-hourly", report, { cron: "0 * * * *", timezone: "Europe/Paris", args: ["h"] });
    const halfHourly = schedule("d-every", report, { every: "30m", args: ["e"] });
    const stack = deploy(kit, awsSchedules([hourly, halfHourly]));
    await syncClock();
    await stack.sweep();
    const documents = DynamoDBDocumentClient.from(stack.clients.dynamodb);
    const stored = async (name: string) =>
      (
        await documents.send(
          new GetCommand({ TableName: kit.config.tableName, Key: { pk: "SCHEDULES", sk: name } }),
        )
      ).Item;
    const declared = [
      (await stored("SCHEDULE#d-hourly"))?.declaration,
      (await stored("SCHEDULE#d-every"))?.declaration,
    ];
    for (const sk of ["SCHEDULE#d-hourly", "SCHEDULE#d-every"])
      await documents.send(
        new UpdateCommand({
          TableName: kit.config.tableName,
          Key: { pk: "SCHEDULES", sk },
          UpdateExpression: "REMOVE declaration",
        }),
      );
    await documents.send(
      new PutCommand({
        TableName: kit.config.tableName,
        Item: { pk: "SCHEDULES", sk: "DECLARED", hash: "older" },
      }),
    );
    const since = emulators.scheduler.requests.length;
    // Act
    const upgraded = await stack.sweep();
    await withCli(kit, async (cli, out) => {
      const listed = await cli("schedules", "list");
      // Assess
      expect(declared.map((text) => JSON.parse(text as string))).toEqual([
        { workflow: "schedules_report", cron: "0 * * * *", timezone: "Europe/Paris" },
        { workflow: "schedules_report", everyMs: 1_800_000, everyFrom: "creation" },
      ]);
      expect(upgraded.schedules).toEqual({ created: [], updated: [], deleted: [] });
      expect(scheduleRequests(since)).toEqual([]);
      expect(listed).toBe(0);
      // No tick fired yet; the cron's next times in its zone, none for rate(), whose phase is its creation's.
      expect(out[0]).toMatch(/d-every\s+schedules_report\s+every 30m\s+active\s+-\s+-\s+-\n/);
      expect(out[0]).toMatch(
        /d-hourly\s+schedules_report\s+0 \* \* \* \* \(Europe\/Paris\)\s+active\s+-\s+-\s+\d{4}-\d\d-\d\d \d\d:00:00Z, /,
      );
    });
  });
});

describe("a deployment without the schedules permissions", () => {
  it("fails the sweep with a ConfigurationError that says to set schedules: true, keeping the service's error as its cause", async () => {
    // Prepare: the scheduler answers AccessDeniedException, as IAM does without the construct's grants.
    const kit = await freshKit();
    const stack = deploy(kit, awsSchedules([schedule("g-denied", report, { every: "1h", args: ["g"] })]));
    const denied = Object.assign(new Error("User is not authorized to perform: scheduler:CreateSchedule"), {
      name: "AccessDeniedException",
    });
    stack.clients.scheduler.middlewareStack.add(
      () => async () => {
        throw denied;
      },
      { step: "initialize", name: "denyScheduler" },
    );
    // Act
    const error = await stack.sweep().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(
      /not authorized.*Set schedules: true on the DurableWorkflows construct/,
    );
    expect((error as Error).cause).toBe(denied);
    stack.clients.scheduler.middlewareStack.remove("denyScheduler");
    // With the permission, the next sweep does what the failed one could not.
    expect((await stack.sweep()).schedules).toEqual({ created: ["g-denied"], updated: [], deleted: [] });
  });
});

describe("recurring schedules firing on the emulation", () => {
  it("starts one run at each tick that the cron expression gives in its time zone, and one only for a tick delivered twice", async () => {
    // Prepare: minute 5 of every other hour in India (UTC+5:30), so the ticks fall at :35 UTC.
    const kit = await freshKit();
    const definition = schedule("c-kolkata", report, {
      cron: "5 */2 * * *",
      timezone: "Asia/Kolkata",
      args: ["kolkata"],
    });
    const { schedules, handled } = counted([definition]);
    const stack = deploy(kit, schedules);
    const createdAt = await syncClock();
    await stack.sweep();
    executions.delete("kolkata");

    // Act: six hours, two at a time.
    for (let i = 0; i < 3; i += 1) {
      await stack.skip(120 * MINUTE);
      const due = ticksBetween(definition, createdAt, emulators.scheduler.now).length;
      await waitFor(`${due} ticks handled`, () => (handled.length === due ? true : undefined));
      // The default overlap is "skip": let the tick's run finish before the next.
      await waitForRuns(stack, "schedules_report", due);
    }
    const expected = ticksBetween(definition, createdAt, emulators.scheduler.now);
    await waitForRuns(stack, "schedules_report", expected.length);
    // EventBridge Scheduler delivers at least once: the first tick comes again.
    await emulators.scheduler.redeliver("schedule.c-kolkata", expected[0] as number);
    await waitFor("the second delivery handled", () =>
      handled.length === expected.length + 1 ? true : undefined,
    );

    // Assess
    expect(expected).toHaveLength(3);
    for (const tick of expected) expect(new Date(tick).getUTCMinutes()).toBe(35);
    expect(await runKeys(stack, "schedules_report")).toEqual(
      expected.map((tick) => tickKey("c-kolkata", tick)).sort(),
    );
    expect(executions.get("kolkata")).toBe(expected.length);
    const fired = emulators.scheduler.invocations.filter((entry) => entry.name === "schedule.c-kolkata");
    expect(fired.map((entry) => entry.at)).toEqual(expected);
  });

  it("skips a tick while the previous run is still going, and starts one per tick with overlap allow", async () => {
    // Prepare: each run sleeps an hour; ticks every 20 minutes.
    const kit = await freshKit();
    const skip = schedule("d-skip", slowReport, { every: "20m" });
    const allow = schedule("d-allow", slowReport, { every: "20m", overlap: "allow" });
    const { schedules, handled } = counted([skip, allow]);
    const stack = deploy(kit, schedules);
    await syncClock();
    await stack.sweep();

    // Act: three ticks of each.
    for (let i = 1; i <= 3; i += 1) {
      await stack.skip(20 * MINUTE);
      await waitFor(`${2 * i} ticks handled`, () => (handled.length === 2 * i ? true : undefined));
    }

    // Assess
    const keys = await runKeys(stack, "schedules_slow_report");
    expect(keys.filter((key) => key.startsWith("schedule:d-skip:"))).toHaveLength(1);
    expect(keys.filter((key) => key.startsWith("schedule:d-allow:"))).toHaveLength(3);
  });
});

describe("overlap buffer-one on the emulation", () => {
  it("holds one tick back while the previous run goes on, starts it once that run finishes, and skips the ticks after it", async () => {
    // Prepare: each run sleeps an hour; ticks every 25 minutes; the held tick looks again every second.
    const kit = await freshKit();
    const definition = schedule("f-buffer", slowReport, { every: "25m", overlap: "buffer-one" });
    const { schedules, handled } = counted([definition], 1);
    const stack = deploy(kit, schedules);
    await syncClock();
    await stack.sweep();
    const fresh = () => handled.filter((message) => !message.buffered);

    // Act: three ticks while the first run sleeps.
    for (let i = 1; i <= 3; i += 1) {
      await stack.skip(25 * MINUTE);
      await waitFor(`${i} ticks handled`, () => (fresh().length === i ? true : undefined));
      // The first run must be asleep (its hour counted from this tick) before the clock moves on.
      await waitFor("the first run asleep", async () => {
        const { runs } = await stack.store.listRuns({ workflowName: "schedules_slow_report" });
        return runs.length === 1 && runs[0]?.status === "suspended" ? true : undefined;
      });
    }
    const ticks = fresh().map((message) => Date.parse(message.scheduledTime));
    // The held tick's message comes back every second, and still finds the first run asleep.
    await waitFor("the held tick looked again", () => (handled.length > 4 ? true : undefined));
    expect(await runKeys(stack, "schedules_slow_report")).toEqual([tickKey("f-buffer", ticks[0] as number)]);
    // The first run's hour passes (its timer fires, 85 minutes in), and it finishes before the next tick.
    await stack.skip(11 * MINUTE);
    const [first] = (await stack.store.listRuns({ workflowName: "schedules_slow_report" })).runs;
    await stack.waitForStatus(first?.runId as string, "completed");

    // Assess: the held (second) tick starts; the third was skipped.
    await waitFor("the held tick's run", async () =>
      (await runKeys(stack, "schedules_slow_report")).length === 2 ? true : undefined,
    );
    expect(await runKeys(stack, "schedules_slow_report")).toEqual(
      [tickKey("f-buffer", ticks[0] as number), tickKey("f-buffer", ticks[1] as number)].sort(),
    );
  });
});

describe("managing schedules through the AWS client", () => {
  it("pauses, resumes, triggers and deletes a schedule with exactly the expected Scheduler requests", async () => {
    // Prepare
    const kit = await freshKit();
    const definition = schedule("e-hourly", report, { cron: "0 * * * *", args: ["hourly"] });
    const { schedules, handled } = counted([definition]);
    const stack = deploy(kit, schedules);
    await syncClock();
    await stack.sweep();
    const client = clientOf(stack);
    const fired = () => emulators.scheduler.invocations.filter((entry) => entry.name === "schedule.e-hourly");

    // Act + Assess: paused, the hour passes without a tick.
    let since = emulators.scheduler.requests.length;
    await client.pauseSchedule("e-hourly");
    expect(scheduleRequests(since).map(({ operation }) => operation)).toEqual([
      "GetSchedule",
      "UpdateSchedule",
    ]);
    expect(scheduleRequests(since)[1]?.input).toMatchObject({
      ScheduleExpression: "cron(0 * * * ? *)",
      State: "DISABLED",
      Target: { Arn: kit.config.stepQueueArn },
    });
    expect(await client.listSchedules()).toMatchObject([
      { name: "e-hourly", workflow: "schedules_report", paused: true },
    ]);
    await stack.skip(61 * MINUTE);
    expect(fired()).toHaveLength(0);
    // Still paused, to a second past an hour: the 61 minutes after the resume then hold one hour, not two.
    await stack.skip(60 * MINUTE - (emulators.clock.now() % (60 * MINUTE)) + 1_000);
    expect(fired()).toHaveLength(0);

    // Resumed, the next hour ticks and starts a run.
    since = emulators.scheduler.requests.length;
    await client.resumeSchedule("e-hourly");
    expect(scheduleRequests(since).map(({ operation }) => operation)).toEqual([
      "GetSchedule",
      "UpdateSchedule",
    ]);
    expect(scheduleRequests(since)[1]?.input).toMatchObject({ State: "ENABLED" });
    await stack.skip(61 * MINUTE);
    expect(fired()).toHaveLength(1);
    await waitFor("the tick handled", () => (handled.length === 1 ? true : undefined));
    await waitForRuns(stack, "schedules_report", 1);

    // Triggered: a run now, outside the ticks.
    since = emulators.scheduler.requests.length;
    const { runId } = await client.triggerSchedule("e-hourly");
    await stack.waitForStatus(runId, "completed");
    expect((await stack.store.getRun(runId))?.idempotencyKey).toMatch(/^schedule:e-hourly:manual:/);
    expect(scheduleRequests(since)).toEqual([]);

    // Deleted: gone from EventBridge Scheduler and from the list; the next sweep does not bring it back.
    await client.deleteSchedule("e-hourly");
    expect(scheduleRequests(since).map(({ operation, name }) => [operation, name])).toEqual([
      ["DeleteSchedule", "schedule.e-hourly"],
    ]);
    expect(emulators.scheduler.list().filter((entry) => entry.name === "schedule.e-hourly")).toEqual([]);
    expect(await client.listSchedules()).toEqual([]);
    await stack.sweep();
    expect(scheduleRequests(since)).toHaveLength(1);
    await expect(client.pauseSchedule("e-hourly")).rejects.toThrow(/No schedule named "e-hourly"/);
    await client.close();
  });

  it("lists, pauses, resumes and deletes a schedule with tsworkflow schedules --table, as the client does", async () => {
    // Prepare
    const kit = await freshKit();
    const definition = schedule("cli-hourly", report, { cron: "0 * * * *", args: ["cli"] });
    const { schedules } = counted([definition]);
    const stack = deploy(kit, schedules);
    await syncClock();
    await stack.sweep();
    await withCli(kit, async (cli, out, err) => {
      // Act
      const since = emulators.scheduler.requests.length;
      const listed = await cli("schedules", "list");
      const paused = await cli("schedules", "pause", "cli-hourly");
      const afterPause = emulators.scheduler.list().find((entry) => entry.name === "schedule.cli-hourly");
      const resumed = await cli("schedules", "resume", "cli-hourly");
      const trigger = await cli("schedules", "trigger", "cli-hourly");
      const deleted = await cli("schedules", "delete", "cli-hourly");
      // Assess
      expect([listed, paused, resumed, deleted]).toEqual([0, 0, 0, 0]);
      expect(trigger).toBe(1);
      expect(err.join("")).toContain('trigger it with createClient().triggerSchedule("cli-hourly")');
      expect(out[0]).toMatch(/cli-hourly\s+schedules_report/);
      expect(afterPause).toMatchObject({ state: "DISABLED" });
      expect(scheduleRequests(since).map(({ operation }) => operation)).toEqual([
        "GetSchedule",
        "UpdateSchedule",
        "GetSchedule",
        "UpdateSchedule",
        "DeleteSchedule",
      ]);
    });
  });
});

describe("a tick whose run cannot start", () => {
  /** The schedule's state item as DynamoDB holds it (the store's reads keep only the fields it knows). */
  async function stateItem(stack: Stack, name: string): Promise<Record<string, unknown> | undefined> {
    const documents = DynamoDBDocumentClient.from(stack.clients.dynamodb);
    const { Item } = await documents.send(
      new GetCommand({
        TableName: stack.config.tableName,
        Key: { pk: "SCHEDULES", sk: `SCHEDULE#${name}` },
        ConsistentRead: true,
      }),
    );
    return Item;
  }

  /** The error logs about schedule `name`, recorded from now to the end of the test. */
  function scheduleErrors(name: string): () => string[] {
    const errors = vi.spyOn(getLogger(), "error");
    onTestFinished(() => errors.mockRestore());
    return () =>
      errors.mock.calls
        .map(([message]) => String(message))
        .filter((message) => message.includes(`"${name}"`));
  }

  /** An hourly schedule deployed and reconciled, its error logs recorded; `first`: its first tick. */
  async function hourly(name: string) {
    const kit = await freshKit();
    const definition = schedule(name, report, { cron: "0 * * * *", args: [name] });
    const { schedules, handled } = counted([definition]);
    const stack = deploy(kit, schedules);
    const errors = scheduleErrors(name);
    await syncClock();
    await stack.sweep();
    return { stack, handled, errors, first: definition.nextTick(emulators.clock.now()) as number };
  }

  it("gives up a tick that can only fail again (an idempotency conflict): logged with the schedule, kept as lastError, no redelivery; the next tick starts its run and clears it", async () => {
    // Prepare: the first tick's key already started a run with other arguments.
    const { stack, handled, errors, first } = await hourly("h-conflict");
    const taken = await stack.invokeStart({
      workflow: "schedules_report",
      args: ["other"],
      idempotencyKey: tickKey("h-conflict", first),
    });

    // Act: the first tick, then the next.
    await stack.skip(first - emulators.clock.now() + 1_000);
    await waitFor("the first tick handled", () => (handled.length === 1 ? true : undefined));
    const failed = await stateItem(stack, "h-conflict");
    const storedError = failed?.lastError as { at: number; message: string } | undefined;
    const listedFailing = (await clientOf(stack).listSchedules()).find((info) => info.name === "h-conflict");
    const failedRecords = stack.stepMapping.stats.failedRecords;
    await stack.skip(60 * MINUTE);
    await waitFor("the second tick handled", () => (handled.length === 2 ? true : undefined));
    await waitForRuns(stack, "schedules_report", 2);
    const recovered = await stateItem(stack, "h-conflict");
    const listedRecovered = (await clientOf(stack).listSchedules()).find(
      (info) => info.name === "h-conflict",
    );

    // Assess
    const tickTime = new Date(first).toISOString();
    expect(failedRecords).toBe(0);
    expect(errors()).toEqual([
      `Schedule "h-conflict" could not start workflow "schedules_report" for the tick of ${tickTime}: Idempotency key "schedule:h-conflict:${tickTime}" already started run ${taken.runId} with a different input. Use a new key for a new input, or the same input to get the existing run. The tick is given up; if the next ones fail the same way, fix the schedule's args or workflow, then deploy.`,
    ]);
    expect(failed?.lastError).toEqual({
      at: expect.any(Number),
      tick: first,
      name: "IdempotencyConflictError",
      code: "IDEMPOTENCY_CONFLICT",
      message: expect.stringContaining(`already started run ${taken.runId} with a different input`),
    });
    expect(failed?.lastRunId).toBeUndefined();
    // Listed as the local scheduler lists it: times as Dates.
    expect(listedFailing?.lastError).toEqual({
      at: new Date(storedError?.at ?? Number.NaN),
      tick: new Date(first),
      name: "IdempotencyConflictError",
      code: "IDEMPOTENCY_CONFLICT",
      message: storedError?.message,
    });
    expect(listedRecovered).not.toHaveProperty("lastError");
    // The last tick that started a run: none while the first was given up, then the second.
    expect(listedFailing).not.toHaveProperty("lastTick");
    expect(listedRecovered?.lastTick).toEqual(new Date(first + 60 * MINUTE));
    expect(await runKeys(stack, "schedules_report")).toEqual(
      [tickKey("h-conflict", first), tickKey("h-conflict", first + 60 * MINUTE)].sort(),
    );
    expect(recovered?.lastError).toBeUndefined();
    expect(recovered?.lastFiredTick).toBe(first + 60 * MINUTE);
    expect(stack.stepMapping.stats.failedRecords).toBe(0);
  });

  it("has SQS deliver a tick again after a failure that may pass (DynamoDB throttling), logged with the schedule, and starts its run once", async () => {
    // Prepare: the step function's first two reads of the schedule's state are throttled.
    const { stack, handled, errors, first } = await hourly("i-throttled");
    let throttles = 2;
    stack.clients.dynamodb.middlewareStack.add(
      (next, context) => async (args) => {
        if (
          context.commandName === "GetItemCommand" &&
          JSON.stringify(args.input).includes("SCHEDULE#i-throttled") &&
          throttles-- > 0
        )
          throw new ProvisionedThroughputExceededException({
            message: "The level of configured provisioned throughput for the table was exceeded.",
            $metadata: {},
          });
        return next(args);
      },
      { step: "initialize", name: "throttleScheduleReads" },
    );

    // Act
    await stack.skip(first - emulators.clock.now() + 1_000);
    await waitFor("the tick handled", () => (handled.length === 1 ? true : undefined));
    await waitForRuns(stack, "schedules_report", 1);

    // Assess
    const tickTime = new Date(first).toISOString();
    expect(throttles).toBeLessThan(0);
    expect(stack.stepMapping.stats.failedRecords).toBe(2);
    expect(errors()).toEqual(
      Array(2).fill(
        `Schedule "i-throttled" could not start workflow "schedules_report" for the tick of ${tickTime}: The level of configured provisioned throughput for the table was exceeded. SQS delivers the tick again after the step queue's visibility timeout (after maxReceiveCount receives, it is in the step DLQ).`,
      ),
    );
    expect(await runKeys(stack, "schedules_report")).toEqual([tickKey("i-throttled", first)]);
    expect((await stateItem(stack, "i-throttled"))?.lastError).toBeUndefined();
  });
});
