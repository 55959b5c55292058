import type { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, describe, expect, it, vi } from "vitest";
import { DynamoDBRateLimitStore } from "../../../lib/adapters/aws/dynamodb-rate-limit-store.ts";
import { DynamoDBSlotStore } from "../../../lib/adapters/aws/dynamodb-slot-store.ts";
import { createClient } from "../../../lib/aws/client.ts";
import { createStepHandler } from "../../../lib/aws/lambda/handlers.ts";
import { ConfigurationError, FatalError } from "../../../lib/core/errors.ts";
import { sleep, waitForEvent } from "../../../lib/core/primitives.ts";
import { step } from "../../../lib/core/step.ts";
import { workflow } from "../../../lib/core/workflow.ts";
import { RunLimits } from "../../../lib/engine/run-limits.ts";
import { StepLimits } from "../../../lib/engine/step-limits.ts";
import type { RateLimitStore, RateRequest } from "../../../lib/ports/rate-limit-store.ts";
import { mostInAWindow } from "../../support/windows.ts";
import { deployStack, type Emulators, type Stack } from "../harness/aws-stack.ts";
import { EventSourceMapping } from "../harness/event-source-mapping.ts";

/** Run concurrency through the real handlers on the emulators, with the slots in DynamoDB Local. */

/** Runs active at once per customer, counted by the runs' own first and last steps (a Set: a step may run twice). */
const active = new Map<string, Set<string>>();
const highest = new Map<string, number>();
const began: string[] = [];
const mark = step("aws_flow_mark", async (kind: string, customer: string, label: string) => {
  const set = active.get(customer) ?? new Set<string>();
  active.set(customer, set);
  if (kind === "begin") {
    if (!began.includes(label)) began.push(label);
    set.add(label);
  } else set.delete(label);
  highest.set(customer, Math.max(highest.get(customer) ?? 0, set.size));
});
const syncAccount = workflow(
  "aws_flow_sync_account",
  async (customer: string, label: string) => {
    await mark("begin", customer, label);
    await sleep("1s");
    await mark("end", customer, label);
    return label;
  },
  { concurrency: { limit: 1, key: (customer) => customer } },
);

/** Labels whose charge is declined once more (a FatalError: the run fails), and the charges that ran. */
const declineNext = new Set<string>();
const charged: string[] = [];
const chargeOrder = step("aws_flow_charge_order", async (label: string) => {
  charged.push(label);
  if (declineNext.delete(label)) throw new FatalError(`card declined for ${label}`);
  return `charged ${label}`;
});
/** One order at a time: each charges, then holds its slot until it gets the event "go". */
const oneOrderAtATime = workflow(
  "aws_flow_one_order_at_a_time",
  async (label: string) => {
    const receipt = await chargeOrder(label);
    await mark("begin", "orders", label);
    await waitForEvent("go");
    await mark("end", "orders", label);
    return receipt;
  },
  { concurrency: { limit: 1 } },
);
/** The same without a limit. */
const unlimitedOrder = workflow("aws_flow_unlimited_order", async (label: string) => chargeOrder(label));

/** Copies of the limited step running at once, counted by the step itself (a duplicate delivery counts too). */
let callsAtOnce = 0;
let mostCallsAtOnce = 0;
const callPartnerApi = step(
  "aws_flow_call_partner_api",
  async (index: number) => {
    callsAtOnce += 1;
    mostCallsAtOnce = Math.max(mostCallsAtOnce, callsAtOnce);
    await new Promise((resolve) => setTimeout(resolve, 150));
    callsAtOnce -= 1;
    return index;
  },
  { concurrency: { limit: 2 } },
);
const fanOut = workflow("aws_flow_fan_out", async (count: number) =>
  Promise.all(Array.from({ length: count }, (_, index) => callPartnerApi(index))),
);

const RATE_PERIOD_MS = 2_000;
/** When the rate-limited step function began, on its own clock. */
const emailStarts: number[] = [];
const sendEmail = step(
  "aws_flow_send_email",
  async (index: number) => {
    emailStarts.push(Date.now());
    return index;
  },
  { rateLimit: { limit: 2, period: RATE_PERIOD_MS } },
);
const campaign = workflow("aws_flow_campaign", async (count: number) =>
  Promise.all(Array.from({ length: count }, (_, index) => sendEmail(index))),
);
const report = workflow("aws_flow_report", async (label: string) => label, {
  rateLimit: { limit: 1, period: RATE_PERIOD_MS },
});

/** A DynamoDB rate limit store that notes when (on the engine's clock) each holder got its start, per key. */
export class RecordingRates implements RateLimitStore {
  constructor(
    private readonly inner: RateLimitStore,
    private readonly grants: Map<string, { key: string; at: number }>,
  ) {}
  async take(request: RateRequest) {
    const answer = await this.inner.take(request);
    if (answer.granted && !this.grants.has(request.holder))
      this.grants.set(request.holder, { key: request.key, at: request.now });
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

/** A step message the functions sent: the attempt it carries and its SQS delay (0: none). */
interface SentStep {
  holder: string;
  stepName: string;
  delaySeconds: number;
}

/** Notes every step message sent through the client, with its DelaySeconds. */
function recordStepSends(sent: SentStep[]) {
  return (client: SQSClient): void => {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = (context as { commandName?: string }).commandName;
        const input = args.input as {
          MessageBody?: string;
          DelaySeconds?: number;
          Entries?: { MessageBody?: string; DelaySeconds?: number }[];
        };
        const entries =
          name === "SendMessageCommand"
            ? [input]
            : name === "SendMessageBatchCommand"
              ? (input.Entries ?? [])
              : [];
        for (const entry of entries) {
          const message = JSON.parse(entry.MessageBody ?? "{}") as {
            kind?: string;
            task?: { runId: string; stepId: string; attempt: number; stepName: string };
          };
          if (message.kind !== "step" || !message.task) continue;
          const { runId, stepId, attempt, stepName } = message.task;
          sent.push({
            holder: `${runId}/${stepId}/${attempt}`,
            stepName,
            delaySeconds: entry.DelaySeconds ?? 0,
          });
        }
        return next(args);
      },
      { step: "initialize", name: "recordStepSends" },
    );
  };
}

export function describeFlowControl(emulatorsOf: () => Emulators): void {
  describe("run concurrency on the AWS runtime (DynamoDBSlotStore), and retryRun of a limited run", () => {
    const stacks: Stack[] = [];
    afterAll(async () => {
      for (const stack of stacks) await stack.stop();
    });

    it("keeps one run per customer active across the functions, starts them in creation order and leaves no slot", async () => {
      // Prepare
      const emulators = emulatorsOf();
      const slotsOf = () =>
        new DynamoDBSlotStore({ client: emulators.dynamo.client(), tableName: emulators.tableName });
      const stack = deployStack(
        emulators,
        { workflows: [syncAccount] },
        { runLimits: () => new RunLimits({ slots: slotsOf() }) },
      );
      stacks.push(stack);
      const labels = ["acme", "globex"].flatMap((customer) =>
        [0, 1, 2].map((index) => [customer, `${customer}-${index}`] as const),
      );

      // Act
      const runIds: string[] = [];
      for (const [customer, label] of labels)
        runIds.push(
          (await stack.invokeStart({ workflow: "aws_flow_sync_account", args: [customer, label] })).runId,
        );
      const runs = await Promise.all(runIds.map((runId) => stack.waitForStatus(runId, "completed", 90_000)));

      // Assess
      expect(runs.map((run) => run.result)).toEqual(labels.map(([, label]) => label));
      expect(highest.get("acme")).toBe(1);
      expect(highest.get("globex")).toBe(1);
      for (const customer of ["acme", "globex"]) {
        expect(began.filter((label) => label.startsWith(customer))).toEqual(
          [0, 1, 2].map((index) => `${customer}-${index}`),
        );
        // The slot is given back after the run's end is committed: soon after it reads completed.
        await vi.waitFor(async () =>
          expect(await slotsOf().inspect(`run:aws_flow_sync_account:${customer}`, Date.now())).toEqual({
            holding: [],
            waiting: [],
          }),
        );
      }
    }, 120_000);

    it("puts a retried run of a limited workflow back in line, pending while another run holds the slot, from a client with or without the runLimits, then completes it; a run without limits goes on at once", async () => {
      // Prepare: A and D fail and give their slot back; B takes it and holds it.
      const emulators = emulatorsOf();
      const table = { client: emulators.dynamo.client(), tableName: emulators.tableName };
      const limits = () => new RunLimits({ slots: new DynamoDBSlotStore(table) });
      const stack = deployStack(
        emulators,
        { workflows: [oneOrderAtATime, unlimitedOrder] },
        { runLimits: limits },
      );
      stacks.push(stack);
      const clients = { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs };
      const limited = createClient(stack.config, { clients, runLimits: limits() });
      const plain = createClient(stack.config, { clients });
      const start = async (label: string) =>
        (await stack.invokeStart({ workflow: "aws_flow_one_order_at_a_time", args: [label] })).runId;
      declineNext.add("retried-a").add("retried-d").add("unlimited");
      const a = await start("retried-a");
      await stack.waitForStatus(a, "failed", 60_000);
      const d = await start("retried-d");
      await stack.waitForStatus(d, "failed", 60_000);
      const b = await start("holder-b");
      await stack.waitForStatus(b, "suspended", 60_000);
      const unlimited = (
        await stack.invokeStart({ workflow: "aws_flow_unlimited_order", args: ["unlimited"] })
      ).runId;
      await stack.waitForStatus(unlimited, "failed", 60_000);

      // Act
      await limited.retryRun(a);
      await plain.retryRun(d);
      await plain.retryRun(unlimited);

      // Assess: the run without limits goes on at once; A and D wait, their charges not run again.
      expect((await stack.waitForStatus(unlimited, "completed", 60_000)).result).toBe("charged unlimited");
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect((await limited.getRun(a))?.status).toBe("pending");
      expect((await limited.getRun(d))?.status).toBe("pending");
      expect(charged.filter((label) => label !== "unlimited")).toEqual([
        "retried-a",
        "retried-d",
        "holder-b",
      ]);
      expect(
        await new DynamoDBSlotStore(table).inspect("run:aws_flow_one_order_at_a_time:", Date.now()),
      ).toEqual({
        holding: [b],
        waiting: [a, d],
      });

      // Act: B ends, A takes the slot; A ends, D takes it.
      await limited.sendEvent(b, "go", null);
      await stack.waitForStatus(a, "suspended", 60_000);
      expect((await limited.getRun(d))?.status).toBe("pending");
      await limited.sendEvent(a, "go", null);
      await stack.waitForStatus(d, "suspended", 60_000);
      await limited.sendEvent(d, "go", null);
      const runs = await Promise.all([a, d].map((runId) => stack.waitForStatus(runId, "completed", 60_000)));

      // Assess
      expect(runs.map((run) => run.result)).toEqual(["charged retried-a", "charged retried-d"]);
      expect(began.filter((label) => ["holder-b", "retried-a", "retried-d"].includes(label))).toEqual([
        "holder-b",
        "retried-a",
        "retried-d",
      ]);
      expect(highest.get("orders")).toBe(1);
      // D gives its slot back after its end is committed: soon after it reads completed.
      await vi.waitFor(async () =>
        expect(
          await new DynamoDBSlotStore(table).inspect("run:aws_flow_one_order_at_a_time:", Date.now()),
        ).toEqual({ holding: [], waiting: [] }),
      );
      await limited.close();
      await plain.close();
    }, 180_000);
  });

  describe("step concurrency and rate limits on the AWS runtime (DynamoDBSlotStore, DynamoDBRateLimitStore)", () => {
    const stacks: Stack[] = [];
    const mappings: EventSourceMapping[] = [];
    afterAll(async () => {
      for (const mapping of mappings) await mapping.stop();
      for (const stack of stacks) await stack.stop();
    });

    const LEASE_MS = 6_000;
    /** A fresh StepLimits on the table, as each Lambda makes its own at cold start. */
    const stepLimitsOf = (emulators: Emulators, grants = new Map<string, { key: string; at: number }>()) => {
      const table = { client: emulators.dynamo.client(), tableName: emulators.tableName };
      const slots = new DynamoDBSlotStore(table);
      const rates = new RecordingRates(new DynamoDBRateLimitStore(table), grants);
      return new StepLimits({ slots, rates, parking: slots, leaseMs: LEASE_MS });
    };

    it("never runs more copies of a step than its concurrency limit across two step functions, wakes the line on release, and leaves no slot", async () => {
      // Prepare: the stack's step function and a second one (its own runtime and limits) on the same queue
      const emulators = emulatorsOf();
      const sent: SentStep[] = [];
      const stack = deployStack(
        emulators,
        { workflows: [fanOut] },
        {
          stepLimits: () => stepLimitsOf(emulators),
          decorateSqs: recordStepSends(sent),
          concurrency: { step: 3 },
        },
      );
      stacks.push(stack);
      const secondStepFunction = new EventSourceMapping({
        client: emulators.sqs.client(),
        queueUrl: stack.queues.stepQueueUrl,
        queueArn: stack.queues.stepQueueArn,
        handler: createStepHandler(
          { workflows: [fanOut] },
          {
            config: stack.config,
            clients: stack.clients,
            clock: emulators.clock,
            stepLimits: stepLimitsOf(emulators),
          },
        ),
        functionName: "tsworkflow-step-2",
        concurrency: 3,
        timeoutMs: 20_000,
        visibilityTimeoutSeconds: 2,
        // Polling as often as the stack's function while the queue is empty, it gets its share of the tasks.
        maxIdleMs: 15,
      }).start();
      mappings.push(secondStepFunction);

      // Act
      const runIds: string[] = [];
      for (const count of [6, 6, 6])
        runIds.push((await stack.invokeStart({ workflow: "aws_flow_fan_out", args: [count] })).runId);
      const runs = await Promise.all(runIds.map((runId) => stack.waitForStatus(runId, "completed", 90_000)));

      // Assess
      expect(runs.map((run) => run.result)).toEqual(runIds.map(() => [0, 1, 2, 3, 4, 5]));
      expect(mostCallsAtOnce).toBe(2);
      expect(secondStepFunction.stats.records).toBeGreaterThan(0);
      expect(
        await new DynamoDBSlotStore({
          client: emulators.dynamo.client(),
          tableName: emulators.tableName,
        }).inspect("step:aws_flow_call_partner_api:", emulators.clock.now()),
      ).toEqual({ holding: [], waiting: [] });
      const calls = sent.filter((message) => message.stepName === "aws_flow_call_partner_api");
      // A task that waits for a slot comes back at its re-check: a third of the lease, as an SQS delay.
      const delayed = calls.filter((message) => message.delaySeconds > 0);
      expect(delayed.length).toBeGreaterThan(0);
      expect(new Set(delayed.map((message) => message.delaySeconds))).toEqual(new Set([LEASE_MS / 3 / 1000]));
      // A release sends the first waiting tasks again at once: some attempts were sent again without a delay.
      const immediate = new Map<string, number>();
      for (const message of calls.filter((call) => call.delaySeconds === 0))
        immediate.set(message.holder, (immediate.get(message.holder) ?? 0) + 1);
      expect([...immediate.values()].some((sends) => sends > 1)).toBe(true);
    }, 120_000);

    it("starts a rate-limited step at most its limit per period, on the engine's clock and on the step functions' own, sending the rest back with SQS delays", async () => {
      // Prepare
      const emulators = emulatorsOf();
      const sent: SentStep[] = [];
      const grants = new Map<string, { key: string; at: number }>();
      const stack = deployStack(
        emulators,
        { workflows: [campaign] },
        { stepLimits: () => stepLimitsOf(emulators, grants), decorateSqs: recordStepSends(sent) },
      );
      stacks.push(stack);

      // Act
      const { runId } = await stack.invokeStart({ workflow: "aws_flow_campaign", args: [6] });
      const run = await stack.waitForStatus(runId, "completed", 90_000);

      // Assess
      expect(run.result).toEqual([0, 1, 2, 3, 4, 5]);
      const granted = [...grants.values()].filter((grant) => grant.key === "step:aws_flow_send_email:");
      expect(granted).toHaveLength(6);
      expect(
        mostInAWindow(
          granted.map((grant) => grant.at),
          RATE_PERIOD_MS,
        ),
      ).toBe(2);
      expect(mostInAWindow(emailStarts, RATE_PERIOD_MS)).toBe(2);
      // No attempt was used up by waiting.
      expect((await stack.events(runId)).filter((event) => event.type === "step_retrying")).toEqual([]);
      // Those that waited went back to the queue with a delay until their turn (6 starts at 2 per 2 s: at most
      // two periods ahead, rounded up to whole seconds).
      const delays = sent
        .filter((message) => message.stepName === "aws_flow_send_email" && message.delaySeconds > 0)
        .map((message) => message.delaySeconds);
      expect(delays.length).toBeGreaterThanOrEqual(4);
      for (const delay of delays) expect(delay).toBeGreaterThanOrEqual(1);
      for (const delay of delays) expect(delay).toBeLessThanOrEqual((2 * RATE_PERIOD_MS) / 1000 + 1);
    }, 120_000);

    it("keeps runs of a rate-limited workflow pending until their turn, through the durable timers, and completes them all", async () => {
      // Prepare
      const emulators = emulatorsOf();
      const grants = new Map<string, { key: string; at: number }>();
      const runLimits = () => {
        const table = { client: emulators.dynamo.client(), tableName: emulators.tableName };
        return new RunLimits({
          slots: new DynamoDBSlotStore(table),
          rates: new RecordingRates(new DynamoDBRateLimitStore(table), grants),
        });
      };
      const stack = deployStack(emulators, { workflows: [report] }, { runLimits });
      stacks.push(stack);

      // Act
      const runIds: string[] = [];
      for (const label of ["a", "b", "c"])
        runIds.push((await stack.invokeStart({ workflow: "aws_flow_report", args: [label] })).runId);
      const pendingAfterStart = (await Promise.all(runIds.map((runId) => stack.store.getRun(runId)))).filter(
        (run) => run?.status === "pending",
      ).length;
      const runs = await Promise.all(runIds.map((runId) => stack.waitForStatus(runId, "completed", 90_000)));

      // Assess
      expect(runs.map((run) => run.result)).toEqual(["a", "b", "c"]);
      expect(pendingAfterStart).toBeGreaterThanOrEqual(1);
      const granted = [...grants.values()].filter((grant) => grant.key === "run:aws_flow_report:");
      expect(granted).toHaveLength(3);
      expect(
        mostInAWindow(
          granted.map((grant) => grant.at),
          RATE_PERIOD_MS,
        ),
      ).toBe(1);
    }, 120_000);
  });

  describe("limits declared on AWS without the options that enforce them", () => {
    const stacks: Stack[] = [];
    afterAll(async () => {
      for (const stack of stacks) await stack.stop();
    });

    it("refuses to start a limited workflow without runLimits, with a ConfigurationError that names the option", async () => {
      // Prepare
      const stack = deployStack(emulatorsOf(), { workflows: [syncAccount, report] });
      stacks.push(stack);

      // Act
      const concurrency = stack.invokeStart({ workflow: "aws_flow_sync_account", args: ["acme", "x"] });
      const rate = stack.invokeStart({ workflow: "aws_flow_report", args: ["x"] });

      // Assess
      await expect(concurrency).rejects.toThrow(ConfigurationError);
      await expect(concurrency).rejects.toThrow(/runLimits/);
      await expect(rate).rejects.toThrow(/runLimits/);
    });

    it("starts a limited workflow from another Lambda's client only when the client is given the runLimits", async () => {
      // Prepare
      const emulators = emulatorsOf();
      const table = { client: emulators.dynamo.client(), tableName: emulators.tableName };
      const limits = () =>
        new RunLimits({ slots: new DynamoDBSlotStore(table), rates: new DynamoDBRateLimitStore(table) });
      const stack = deployStack(emulators, { workflows: [report] }, { runLimits: limits });
      stacks.push(stack);
      const clients = { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs };
      const limited = createClient(stack.config, { clients, runLimits: limits() });
      const unlimited = createClient(stack.config, { clients });

      // Act
      const runId = await limited.start(report, ["from the client"]);
      const refused = unlimited.start(report, ["unlimited"]);

      // Assess
      await expect(refused).rejects.toThrow(ConfigurationError);
      await expect(refused).rejects.toThrow(/runLimits/);
      expect((await stack.waitForStatus(runId, "completed", 60_000)).result).toBe("from the client");
    }, 90_000);

    it("fails a limited step without stepLimits at its first attempt, with a ConfigurationError that names the option", async () => {
      // Prepare
      const stack = deployStack(emulatorsOf(), { workflows: [campaign] });
      stacks.push(stack);

      // Act
      const { runId } = await stack.invokeStart({ workflow: "aws_flow_campaign", args: [1] });
      const run = await stack.waitForStatus(runId, "failed", 60_000);

      // Assess
      expect(run.error?.name).toBe("ConfigurationError");
      expect(run.error?.message).toMatch(/stepLimits/);
      const events = await stack.events(runId);
      expect(events.filter((event) => event.type === "step_retrying")).toEqual([]);
    }, 90_000);
  });
}
