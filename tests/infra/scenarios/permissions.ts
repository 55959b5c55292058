import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SchedulerClient } from "@aws-sdk/client-scheduler";
import { SQSClient } from "@aws-sdk/client-sqs";
import { aws_lambda as lambda, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DurableWorkflows } from "../../../infra/durable-workflows.ts";
import { EXAMPLES_ENTRY } from "../../../infra/stack.ts";
import { createClient } from "../../../lib/aws/client.ts";
import {
  createReaperHandler,
  createStartHandler,
  createStepHandler,
  createSweeperHandler,
  createWebhookHandler,
  createWorkflowHandler,
} from "../../../lib/aws/lambda/handlers.ts";
import { awsSchedules } from "../../../lib/aws/schedules.ts";
import { getStepInfo } from "../../../lib/core/context.ts";
import { configureLogging } from "../../../lib/core/logger.ts";
import { createWebhook, runChild, sleep, waitForEvent } from "../../../lib/core/primitives.ts";
import { step } from "../../../lib/core/step.ts";
import { workflow } from "../../../lib/core/workflow.ts";
import type { AwsClients } from "../../../lib/runtimes/aws.ts";
import { schedule } from "../../../lib/schedules/schedule.ts";
import {
  createKit,
  deployStack,
  type Emulators,
  type Kit,
  type Stack as KitStack,
  lambdaContext,
  ofType,
} from "../../aws/harness/aws-stack.ts";
import { TEST_CREDENTIALS, TEST_REGION } from "../../aws/harness/free-port.ts";
import { waitFor } from "../../aws/harness/wait.ts";
import { type PolicyStatement, statementsOf, testApp } from "../helpers.ts";

/**
 * The IAM policies are enough: each function (built by the real handler factories, with its own SDK
 * clients) and the `grantStart` client run workflows that use every runtime path (steps, a retry, a
 * short and a long sleep, a child run, an idempotent start), every AWS request is recorded as the
 * IAM action and resource it needs, and each must be among those the construct's template grants
 * that principal. The same for the webhook function and for a `grantRunControl` client that sends
 * events, cancels and retries runs. (The event source mappings' receive and delete are checked in
 * durable-workflows.test.ts.)
 */

const DAY = 24 * 60 * 60 * 1000;
type Principal =
  | "workflow"
  | "step"
  | "start"
  | "webhook"
  | "client"
  | "control"
  | "schedules"
  | "sweeper"
  | "reaper";
const PRINCIPALS: Principal[] = [
  "schedules",
  "workflow",
  "step",
  "start",
  "webhook",
  "client",
  "control",
  "sweeper",
  "reaper",
];

/**
 * `<action>@<resource>` pairs: resources are named `table`, `tableIndexes`, `workflowQueue`, `stepQueue`,
 * `schedules` (timers' one-time schedules), `recurringSchedules` (`schedule.*`), `schedulerRole`,
 * `payloadBucket`, `payloadObjects`.
 */
const used = Object.fromEntries(PRINCIPALS.map((name) => [name, new Set<string>()])) as Record<
  Principal,
  Set<string>
>;
const granted = Object.fromEntries(PRINCIPALS.map((name) => [name, new Set<string>()])) as Record<
  Principal,
  Set<string>
>;

const failedOnce = new Set<string>();
const double = step("iam_double", async (n: number) => n * 2);
const flaky = step(
  "iam_flaky",
  async () => {
    const runId = getStepInfo()?.runId ?? "";
    if (!failedOnce.has(runId)) {
      failedOnce.add(runId);
      throw new Error("the first attempt fails");
    }
    return "ok";
  },
  { maxRetries: 3, retryDelay: "1s" },
);
const child = workflow("iam_child", async (n: number) => double(n));
const parent = workflow("iam_parent", async (n: number) => {
  const doubled = await double(n);
  await sleep("1s");
  await sleep("2d");
  const fromChild = await runChild(child, [doubled]);
  await flaky();
  return fromChild;
});
const breaksOnce = step(
  "iam_breaks_once",
  async () => {
    const runId = getStepInfo()?.runId ?? "";
    if (!failedOnce.has(runId)) {
      failedOnce.add(runId);
      throw new Error("fails the run the first time");
    }
    return "mended";
  },
  { maxRetries: 0 },
);
const hooked = workflow("iam_hooked", async () => createWebhook<{ approved: boolean }>().wait());
const waiting = workflow("iam_waiting", async () => waitForEvent<{ go: boolean }>("go"));
const breaks = workflow("iam_breaks", async () => breaksOnce());
// Through the step function (its own S3 writes), then inline in the workflow function (the same writes there).
const big = step("iam_big", async (kb: number) => "b".repeat(kb * 1024), { inline: false });
const bigInline = step("iam_big_inline", async (kb: number) => "c".repeat(kb * 1024));
const large = workflow(
  "iam_large",
  async (input: string) =>
    (await big(input.length / 1024)).length + (await bigInline(input.length / 1024)).length,
);
const sleepy = workflow("iam_sleepy", async () => {
  await sleep("2d");
  return "woke";
});
// A declared schedule: the sweeper reconciles it, the step function starts its ticks' runs.
const hourly = schedule("iam-hourly", child, { cron: "0 * * * *", args: [3] });
const registry = {
  workflows: [parent, child, hooked, waiting, breaks, sleepy, large],
  schedules: awsSchedules([hourly]),
};

let emulators: Emulators;
let kit: Kit;
let stack: KitStack;
const created: { destroy(): void }[] = [];

/** SDK clients whose every request is recorded for `principal` as the IAM action and resource it needs. */
function recordedClients(principal: Principal): AwsClients {
  const settings = (endpoint: string | undefined) => ({
    endpoint,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 3,
  });
  const clients = {
    dynamodb: new DynamoDBClient(settings(emulators.dynamo.endpoint)),
    sqs: new SQSClient(settings(emulators.sqs.endpoint)),
    scheduler: new SchedulerClient(settings(emulators.scheduler.endpoint)),
    s3: emulators.s3.client(),
  };
  created.push(clients.dynamodb, clients.sqs, clients.scheduler, clients.s3);
  for (const [service, client] of Object.entries(clients)) {
    (client.middlewareStack as unknown as MiddlewareStack).add(
      (next, context) => async (args) => {
        for (const need of needs(service, (context.commandName ?? "").replace(/Command$/, ""), args.input)) {
          used[principal].add(need);
        }
        return next(args);
      },
      { step: "initialize", name: `iamRecorder-${service}` },
    );
  }
  return clients;
}

interface MiddlewareStack {
  add(
    middleware: (
      next: (args: { input: Record<string, unknown> }) => Promise<unknown>,
      context: { commandName?: string },
    ) => (args: { input: Record<string, unknown> }) => Promise<unknown>,
    options: { step: "initialize"; name: string },
  ): void;
}

/** The IAM actions (on named resources) one request needs. */
function needs(service: string, operation: string, input: Record<string, unknown>): string[] {
  if (service === "dynamodb") {
    const tables = JSON.stringify(input).match(/"TableName":"([^"]+)"/g) ?? [];
    expect(tables.every((entry) => entry.includes(`"${kit.config.tableName}"`))).toBe(true);
    if (operation === "TransactWriteItems") {
      const items = input.TransactItems as Record<string, unknown>[];
      const item = {
        Put: "PutItem",
        Update: "UpdateItem",
        Delete: "DeleteItem",
        ConditionCheck: "ConditionCheckItem",
      };
      return items.flatMap((entry) =>
        Object.keys(entry).map((kind) => `dynamodb:${item[kind as keyof typeof item]}@table`),
      );
    }
    return [`dynamodb:${operation}@${input.IndexName === undefined ? "table" : "tableIndexes"}`];
  }
  if (service === "s3") {
    expect(input.Bucket).toBe(kit.config.payloadBucket);
    const action = { ListObjectsV2: "ListBucket", DeleteObjects: "DeleteObject", HeadObject: "GetObject" }[
      operation
    ];
    if (action === "ListBucket") return ["s3:ListBucket@payloadBucket"];
    expect(String(input.Key ?? "runs/")).toMatch(/^runs\//);
    return [`s3:${action ?? operation}@payloadObjects`];
  }
  if (service === "sqs") {
    const queue =
      input.QueueUrl === kit.queues.workflowQueueUrl
        ? "workflowQueue"
        : input.QueueUrl === kit.queues.stepQueueUrl
          ? "stepQueue"
          : `unknown queue ${String(input.QueueUrl)}`;
    return [`sqs:${operation === "SendMessageBatch" ? "SendMessage" : operation}@${queue}`];
  }
  expect(input.GroupName).toBe(kit.config.scheduleGroup);
  const target = input.Target as { RoleArn?: string } | undefined;
  const schedules = String(input.Name).startsWith("schedule.") ? "recurringSchedules" : "schedules";
  return [
    `scheduler:${operation}@${schedules}`,
    ...(target?.RoleArn === kit.config.schedulerRoleArn ? ["iam:PassRole@schedulerRole"] : []),
  ];
}

/** What the template grants each principal, with the same resource names. */
function grantsFromTemplate(): void {
  const app = testApp();
  const cdkStack = new Stack(app, "Grants");
  const workflows = new DurableWorkflows(cdkStack, "Workflows", {
    entry: EXAMPLES_ENTRY,
    webhooks: true,
    schedules: true,
  });
  const caller = new lambda.Function(cdkStack, "Caller", {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: "index.handler",
    code: lambda.Code.fromInline("export const handler = async () => {};"),
  });
  workflows.grantStart(caller);
  const operator = new lambda.Function(cdkStack, "Operator", {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: "index.handler",
    code: lambda.Code.fromInline("export const handler = async () => {};"),
  });
  workflows.grantRunControl(operator);
  const scheduleOperator = new lambda.Function(cdkStack, "ScheduleOperator", {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: "index.handler",
    code: lambda.Code.fromInline("export const handler = async () => {};"),
  });
  workflows.grantScheduleControl(scheduleOperator);
  const template = Template.fromStack(cdkStack);
  const names = new Map<string, string>([
    [JSON.stringify(cdkStack.resolve(workflows.table.tableArn)), "table"],
    [JSON.stringify(cdkStack.resolve(workflows.workflowQueue.queueArn)), "workflowQueue"],
    [JSON.stringify(cdkStack.resolve(workflows.stepQueue.queueArn)), "stepQueue"],
    [JSON.stringify(cdkStack.resolve(workflows.schedulerRole.roleArn)), "schedulerRole"],
    [JSON.stringify(cdkStack.resolve(`${workflows.table.tableArn}/index/*`)), "tableIndexes"],
    [JSON.stringify(cdkStack.resolve(workflows.payloadBucket.bucketArn)), "payloadBucket"],
    [JSON.stringify(cdkStack.resolve(workflows.payloadBucket.arnForObjects("runs/*"))), "payloadObjects"],
  ]);
  const nameOf = (resource: unknown) => {
    const json = JSON.stringify(resource);
    if (json.includes(`:schedule/${workflows.scheduleGroup.scheduleGroupName}/*`)) return "schedules";
    if (json.includes(`:schedule/${workflows.scheduleGroup.scheduleGroupName}/schedule.*`))
      return "recurringSchedules";
    return names.get(json) ?? json;
  };
  const principals: [Principal, lambda.IFunction][] = [
    ["workflow", workflows.workflowFunction],
    ["step", workflows.stepFunction],
    ["start", workflows.startFunction],
    ["webhook", workflows.webhookFunction as lambda.IFunction],
    ["client", caller],
    ["control", operator],
    ["schedules", scheduleOperator],
    ["sweeper", workflows.sweeperFunction],
    ["reaper", workflows.reaperFunction],
  ];
  for (const [principal, fn] of principals) {
    for (const statement of statementsOf(template, cdkStack, fn) as PolicyStatement[]) {
      const actions = Array.isArray(statement.Action) ? statement.Action : [statement.Action];
      const resources = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
      for (const action of actions)
        for (const resource of resources) granted[principal].add(`${action}@${nameOf(resource)}`);
    }
  }
}

/**
 * Runs all `runIds` past their long sleep with one skip of the shared clock, taken only once every run
 * has created its schedule. Skipping as soon as one run had its schedule raced the others: a run
 * between committing its `sleep_created` (resume time from the clock before the skip) and arming it
 * finds the sleep already due after the skip, so the timers send its activation at once and never
 * create a schedule (right for the product, but the creation waited for here would never come).
 */
async function runToCompletion(runIds: string[]): Promise<void> {
  // The schedule itself, not only the committed sleep: skipping before it exists would leave it unfired.
  for (const runId of runIds) {
    await waitFor(`the long sleep of run ${runId} to be scheduled`, async () =>
      emulators.scheduler.requests.some(
        (request) =>
          request.operation === "CreateSchedule" &&
          request.status === 200 &&
          JSON.stringify(request.input).includes(runId),
      )
        ? true
        : undefined,
    );
  }
  await stack.skip(2 * DAY + 1_000);
  for (const runId of runIds) {
    const run = await stack.waitForStatus(runId, ["completed", "failed"], 25_000);
    expect(run.status).toBe("completed");
    expect(run.result).toBe(8);
  }
}

/** A client of the deployment whose requests are recorded for `principal`. */
function clientFor(principal: Principal) {
  const clients = recordedClients(principal);
  return createClient(
    {
      tableName: kit.config.tableName,
      workflowQueueUrl: kit.config.workflowQueueUrl,
      region: kit.config.region,
      endpoints: kit.config.endpoints,
      scheduleGroup: kit.config.scheduleGroup,
      ...(kit.config.payloadBucket ? { payloadBucket: kit.config.payloadBucket } : {}),
    },
    {
      clients: { dynamodb: clients.dynamodb, sqs: clients.sqs, s3: clients.s3, scheduler: clients.scheduler },
      clock: emulators.clock,
    },
  );
}

/** Each principal used something, and nothing its policies do not grant. */
function expectGranted(principals: Principal[]): void {
  for (const principal of principals) {
    expect(used[principal].size).toBeGreaterThan(0);
    expect({
      principal,
      missing: [...used[principal]].filter((need) => !granted[principal].has(need)),
    }).toEqual({ principal, missing: [] });
  }
}

function setUp(emulatorsOf: () => Emulators) {
  beforeAll(async () => {
    configureLogging({ level: "silent" });
    grantsFromTemplate();
    emulators = emulatorsOf();
    kit = createKit(emulators, { visibilityTimeoutSeconds: 30 });
    const options = (principal: Principal) => ({
      config: kit.config,
      clients: recordedClients(principal),
      clock: emulators.clock,
    });
    stack = deployStack(emulators, registry, {
      kit,
      handlers: {
        workflowHandler: createWorkflowHandler(registry, options("workflow")),
        stepHandler: createStepHandler(registry, options("step")),
        startHandler: createStartHandler(registry, options("start")),
      },
    });
  });

  afterAll(async () => {
    await stack?.stop();
    for (const client of created) client.destroy();
    configureLogging();
  });
}

export function describePermissions(emulatorsOf: () => Emulators): void {
  describe("the construct's IAM policies", () => {
    setUp(emulatorsOf);

    it("are enough for runs started through the start function and through the client", async () => {
      // Prepare
      const client = clientFor("client");
      // Act
      const first = await stack.invokeStart({ workflow: "iam_parent", args: [2], idempotencyKey: "iam-1" });
      const again = await stack.invokeStart({ workflow: "iam_parent", args: [2], idempotencyKey: "iam-1" });
      const second = await client.start(parent, [2], { idempotencyKey: "iam-2" });
      await runToCompletion([first.runId, second]);
      expect(await client.getRun(second)).toMatchObject({ status: "completed" });
      await client.close();
      // Assess
      expect(again).toEqual({ runId: first.runId, created: false });
      expectGranted(["workflow", "step", "start", "client"]);
      // The paths above did reach the scheduler, both queues and the retry. Activations run in the workflow
      // function and, after a step its run waits on alone, in the step function.
      const activations = [...used.workflow, ...used.step];
      expect(activations).toContain("scheduler:CreateSchedule@schedules");
      expect(activations).toContain("iam:PassRole@schedulerRole");
      expect(used.workflow).toContain("sqs:SendMessage@stepQueue");
    });

    it("are enough for webhooks, events, cancellation and retries", async () => {
      // Prepare
      const control = clientFor("control");
      const webhookHandler = createWebhookHandler(registry, {
        config: kit.config,
        clients: recordedClients("webhook"),
        clock: emulators.clock,
      });
      const suspended = (runId: string) => stack.waitForStatus(runId, "suspended");
      // Act: a webhook call resumes one run, an event another; one run is retried, one cancelled.
      const hookRun = await control.start(hooked, []);
      await suspended(hookRun);
      const token = ofType(await stack.events(hookRun), "hook_created")[0]?.token as string;
      const call = await webhookHandler(
        {
          rawPath: `/hooks/${token}`,
          body: JSON.stringify({ approved: true }),
          headers: { "content-type": "application/json" },
          requestContext: { http: { method: "POST" } },
        },
        lambdaContext("tsworkflow-webhook"),
      );
      const eventRun = await control.start(waiting, []);
      await suspended(eventRun);
      await control.sendEvent(eventRun, "go", { go: true });
      const brokenRun = await control.start(breaks, []);
      await stack.waitForStatus(brokenRun, "failed");
      await control.retryRun(brokenRun);
      const sleepyRun = await control.start(sleepy, []);
      await waitFor("the long sleep to be scheduled", async () =>
        ofType(await stack.events(sleepyRun), "sleep_created").length === 1 ? true : undefined,
      );
      await suspended(sleepyRun);
      await control.cancelRun(sleepyRun, "no longer needed");
      // Assess
      expect(call.statusCode).toBe(202);
      expect((await stack.waitForStatus(hookRun, "completed")).result).toEqual({ approved: true });
      expect((await stack.waitForStatus(eventRun, "completed")).result).toEqual({ go: true });
      expect((await stack.waitForStatus(brokenRun, "completed")).result).toBe("mended");
      await stack.waitForStatus(sleepyRun, "cancelled");
      // The schedule is deleted after the cancellation's commit (after commit, send): wait for it.
      await waitFor("the workflow function to delete the cancelled sleep's schedule", () =>
        used.workflow.has("scheduler:DeleteSchedule@schedules") ? true : undefined,
      );
      await control.close();
      expectGranted(["workflow", "step", "webhook", "control"]);
      expect(used.control).toContain("dynamodb:UpdateItem@table");
      expect(used.workflow).toContain("scheduler:DeleteSchedule@schedules");
    });

    it("are enough for payloads in S3, listing, the sweeper and the reaper", async () => {
      // Prepare
      const control = clientFor("control");
      const sweeper = createSweeperHandler(registry, {
        config: kit.config,
        clients: recordedClients("sweeper"),
        clock: emulators.clock,
      });
      const reaper = createReaperHandler(registry, {
        config: kit.config,
        clients: recordedClients("reaper"),
      });
      // Act: a run whose input and step result go to S3, a listing, a sweep, and the run's expiry.
      const runId = await control.start(large, ["i".repeat(100 * 1024)]);
      const run = await stack.waitForStatus(runId, "completed");
      const page = await control.listRuns({ workflowName: "iam_large", limit: 5 });
      await sweeper({}, lambdaContext("tsworkflow-sweeper"));
      const reaped = await reaper(
        {
          Records: [
            {
              eventName: "REMOVE",
              userIdentity: { type: "Service", principalId: "dynamodb.amazonaws.com" },
              dynamodb: { OldImage: { sk: { S: "RUN" }, runId: { S: runId } } },
            },
          ],
        },
        lambdaContext("tsworkflow-reaper"),
      );
      await control.close();
      // Assess
      expect(run.result).toBe(2 * 100 * 1024);
      expect(page.runs.map((entry) => entry.runId)).toContain(runId);
      expect(reaped.reaped).toEqual([runId]);
      expectGranted(["workflow", "step", "control", "sweeper", "reaper"]);
      expect(used.control).toContain("s3:PutObject@payloadObjects");
      expect(used.step).toContain("s3:PutObject@payloadObjects");
      expect(used.workflow).toContain("s3:GetObject@payloadObjects");
      expect(used.sweeper).toContain("dynamodb:Query@tableIndexes");
      expect(used.reaper).toContain("s3:DeleteObject@payloadObjects");
      expect(used.reaper).toContain("dynamodb:BatchWriteItem@table");
    });

    it("are enough for declared schedules: the sweeper's reconcile, a tick's run, and grantScheduleControl", async () => {
      // Prepare
      const control = clientFor("schedules");
      const sweeper = createSweeperHandler(registry, {
        config: kit.config,
        clients: recordedClients("sweeper"),
        clock: emulators.clock,
      });
      const tickRun = async () => {
        // Read with the harness's own store: listing is grantRead's, not what is checked here.
        const { runs } = await stack.store.listRuns({ workflowName: "iam_child", limit: 50 });
        return runs.find(
          (run) => run.idempotencyKey?.startsWith("schedule:iam-hourly:") && run.status === "completed",
        );
      };
      // Act: a sweep (creates the schedule unless an earlier sweep did), an hour for a tick, then control.
      await sweeper({}, lambdaContext("tsworkflow-sweeper"));
      await emulators.scheduler.advanceTo(emulators.clock.now());
      await stack.skip(61 * 60_000);
      await waitFor("the run of a tick", tickRun);
      await control.pauseSchedule("iam-hourly");
      await control.resumeSchedule("iam-hourly");
      const { runId } = await control.triggerSchedule("iam-hourly");
      await stack.waitForStatus(runId, "completed");
      await control.deleteSchedule("iam-hourly");
      await control.close();
      // Assess
      expectGranted(["sweeper", "step", "schedules"]);
      expect(used.sweeper).toContain("scheduler:CreateSchedule@recurringSchedules");
      expect(used.sweeper).toContain("iam:PassRole@schedulerRole");
      expect(used.sweeper).toContain("dynamodb:PutItem@table");
      expect(used.step).toContain("dynamodb:UpdateItem@table");
      expect(used.schedules).toContain("scheduler:UpdateSchedule@recurringSchedules");
      expect(used.schedules).toContain("scheduler:DeleteSchedule@recurringSchedules");
      expect(used.schedules).toContain("iam:PassRole@schedulerRole");
    });
  });
}
