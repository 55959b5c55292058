import { beforeAll, describe, expect, it } from "vitest";
import { DOCUMENT_LAG_MS } from "../../../lib/adapters/aws/document-lag.ts";
import { scheduleName } from "../../../lib/adapters/aws/scheduler-timers.ts";
import { createClient } from "../../../lib/aws/client.ts";
import { TimeoutError } from "../../../lib/core/errors.ts";
import { runChild, sleep, waitForEvent } from "../../../lib/core/primitives.ts";
import { step } from "../../../lib/core/step.ts";
import { workflow } from "../../../lib/core/workflow.ts";
import { deployStack, type Emulators } from "../harness/aws-stack.ts";
import type { RequestCounts } from "../harness/request-counter.ts";
import { waitFor } from "../harness/wait.ts";

/**
 * Counts the AWS requests of runs on the real handlers (warm functions, no failures) and checks them
 * against the cost model in docs/aws.md. Marginal costs come from differences between runs (11 steps
 * minus 1 step, 2 sleeps minus none), so per-run overhead cancels out.
 */

const DAY = 86_400_000;
const work = step("aws_cost_work", async (i: number) => i * 2);
const steps = workflow("aws_cost_steps", async (n: number) => {
  let total = 0;
  for (let i = 0; i < n; i += 1) total += await work(i);
  return total;
});
const sleeps = workflow("aws_cost_sleeps", async (n: number, ms: number) => {
  for (let i = 0; i < n; i += 1) await sleep(ms);
  return n;
});
const naps = workflow("aws_cost_naps", async (n: number, ms: number) => {
  let total = 0;
  for (let i = 0; i < n; i += 1) {
    total += await work(i);
    await sleep(ms);
  }
  return total;
});
const waits = workflow("aws_cost_waits", async (n: number) => {
  for (let i = 0; i < n; i += 1) await waitForEvent("go");
  return n;
});
const timedOutWaits = workflow("aws_cost_timeouts", async (n: number) => {
  for (let i = 0; i < n; i += 1)
    await waitForEvent("go", { timeout: 2 * DAY }).catch((error: unknown) => {
      if (!(error instanceof TimeoutError)) throw error;
    });
  return n;
});
const leaf = workflow("aws_cost_leaf", async () => 1);
const parent = workflow("aws_cost_parent", async (n: number) => {
  let total = 0;
  for (let i = 0; i < n; i += 1) total += await runChild(leaf, []);
  return total;
});
const fanOut = workflow("aws_cost_fan_out", async (n: number) => {
  const results = await Promise.all(Array.from({ length: n }, (_, i) => work(i)));
  return results.length;
});

/**
 * What docs/aws.md says one sequential step run inline costs (the workflow invocation runs it and commits
 * its result with the next step's start): requests by operation, capacity units, messages.
 */
const PER_INLINE_STEP = {
  requests: {
    "dynamodb.PutItem": 1,
    "dynamodb.Query": 1,
  },
  // The commit alone: a commit that leaves a running run running does not update its document while the
  // document says running as of less than 5 s before (DOCUMENT_LAG_MS).
  writeUnits: 1,
  // The outcome query finds nothing (an inline step's result is carried, never stored as an outcome):
  // DynamoDB Local reports 0 units for it; AWS bills a strongly consistent Query at least 1 (docs/aws.md does).
  readUnits: 0,
  emptyReadUnits: 1,
  messages: 0,
};
/**
 * What docs/aws.md says one sequential step sent through the step queue costs: the step function runs it,
 * stores its outcome and goes on with the run (the run waits on that step alone), sending the next task.
 */
const PER_QUEUED_STEP = {
  requests: {
    "dynamodb.GetItem": 1,
    "dynamodb.PutItem": 2,
    "dynamodb.Query": 1,
    "sqs.SendMessage": 1,
  },
  // The outcome and the commit; the document stays as it is (as for an inline step).
  writeUnits: 2,
  readUnits: 2,
  // Its reads all find something (DynamoDB Local reports their units): none billed on top.
  emptyReadUnits: 0,
  messages: 1,
};
/**
 * One sleep of up to 15 minutes: a delayed SQS message, whose activation the step function runs. The run
 * stays listed as running and out of the due index, so no index key moves: the commit and the document.
 */
const PER_SHORT_SLEEP = {
  requests: {
    "dynamodb.PutItem": 1,
    "dynamodb.Query": 1,
    "dynamodb.UpdateItem": 1,
    "sqs.SendMessage": 1,
  },
  writeUnits: 2,
  // The outcome query finds nothing: 0 units on DynamoDB Local. A timer's activation expects no outcome, so
  // the query is eventually consistent: AWS bills it 0.5 (docs/aws.md does).
  readUnits: 0,
  emptyReadUnits: 0.5,
  messages: 1,
  schedulerInvocations: 0,
};
/**
 * One longer sleep (an EventBridge Scheduler one-time schedule that sends to the step queue). The run's
 * wake-up time is in the sweeper's due index: from one sleep to the next its key moves (2 WRU).
 */
const PER_LONG_SLEEP = {
  requests: {
    "dynamodb.PutItem": 1,
    "dynamodb.Query": 1,
    "dynamodb.UpdateItem": 1,
    "scheduler.CreateSchedule": 1,
  },
  writeUnits: 4,
  readUnits: 0,
  // The outcome query of the timer's activation, eventually consistent, finds nothing (as for a short sleep).
  emptyReadUnits: 0.5,
  messages: 1,
  schedulerInvocations: 1,
};
/**
 * One wait for an event that times out after 2 days: a long timer, as a long sleep, whose activation
 * lists the run's outcomes strongly consistent (every event stored before the deadline must be seen: it
 * wins over the timeout), 1 RRU where a sleep's eventually consistent query costs 0.5.
 */
const PER_LONG_TIMEOUT = { ...PER_LONG_SLEEP, emptyReadUnits: 1 };
/**
 * What the first activation of a run on the step function adds (a due timer of a run it has not seen):
 * it reads the run and its log, as any activation on a fresh instance.
 */
const FIRST_ON_STEP_FUNCTION = { "dynamodb.GetItem": 1, "dynamodb.Query": 1 };
/** One event received by a waiting run, sent by another Lambda with the client (`sendEvent`). */
const PER_EVENT = {
  requests: {
    "dynamodb.GetItem": 1,
    "dynamodb.PutItem": 2,
    "dynamodb.Query": 1,
    "dynamodb.UpdateItem": 2,
    "sqs.SendMessage": 1,
  },
  // The event's outcome 2 (the item and its entry in the sweeper's due index), taken out of that index when
  // the activation lists it 2, the commit 1, the run's document updates 2.
  writeUnits: 7,
  readUnits: 2,
  messages: 1,
};
/** One child run (`runChild` of a workflow with no step): its creation, its activation, the parent's wake-up. */
const PER_CHILD = {
  requests: {
    "dynamodb.TransactWriteItems": 1,
    "dynamodb.GetItem": 1,
    "dynamodb.PutItem": 3,
    "dynamodb.Query": 3,
    "dynamodb.UpdateItem": 3,
    "sqs.SendMessage": 2,
  },
  // The child's creation 8 (as for a run, below), three puts of 1 (the child's commit, its result for the
  // parent, the parent's commit), the child's and the parent's document updates with their index entries 8,
  // and the result's entry in the sweeper's due index: 1 with the put, 2 to take it out when the parent's
  // activation lists it.
  writeUnits: 22,
  // The child's first activation reads its log eventually consistent (its document says pending, so it
  // is not behind the log): half a unit for a small log.
  readUnits: 2.5,
  messages: 2,
};
/**
 * A queued step when every invocation lands on a fresh instance: the activation reads the run and its log.
 * The document says running, and the log's commits since kept the run running: the fresh instance leaves
 * the document behind too.
 */
const PER_COLD_QUEUED_STEP = {
  requests: {
    "dynamodb.GetItem": 2,
    "dynamodb.PutItem": 2,
    "dynamodb.Query": 2,
    "sqs.SendMessage": 1,
  },
  messages: 1,
};
/** A run with no step and no sleep (no idempotency key, no tags): create, one activation, done. */
const PER_RUN = {
  requests: {
    "dynamodb.GetItem": 1,
    "dynamodb.Query": 2,
    "dynamodb.PutItem": 3,
    "dynamodb.UpdateItem": 1,
    "sqs.SendMessage": 1,
  },
  // The creation's two puts 4 (the first commit 1; the document 1 and its gsi1 and gsi2 entries 2), the
  // commit 1, the document's update 3 (1, and its gsi1 entry moving to completed: 2).
  writeUnits: 8,
  messages: 1,
};

interface Measured {
  requests: Record<string, number>;
  writeUnits: number;
  /** The writes that make up `writeUnits`, shown when a count is not the documented one. */
  writes: RequestCounts["writes"];
  /** Conditional writes that failed (lost races): none on warm instances. */
  failedWrites: number;
  readUnits: number;
  /** What AWS bills for the reads DynamoDB Local reported as 0 units (see `RequestCounts`). */
  emptyReadUnits: number;
  messages: number;
  schedulerInvocations: number;
  /** Sizes of the `SendMessageBatch` requests to the step queue. */
  stepBatches: number[];
  /** Milliseconds from the run's first event to its last. */
  span: number;
  /** Requests the SDK sent more than once (see `RequestCounts.retriedRequests`): 0 for exact counts. */
  retriedRequests: number;
}

let emulators: Emulators;

type MeasureOptions = {
  longSleeps?: number;
  /** Waits that time out after 2 days. */
  timeouts?: number;
  events?: number;
  inlineSteps?: boolean;
  churn?: number;
};

/**
 * `measureOnce`, again (up to three times) while its counts cannot be exact: when the SDK had to send a
 * request twice (the capacity of the lost try is in no answer: a reset connection to DynamoDB Local under
 * load), or when `inexact` gives another reason.
 */
async function measure(
  name: string,
  args: unknown[],
  options: MeasureOptions = {},
  inexact: (measured: Measured) => string | undefined = () => undefined,
): Promise<Measured> {
  for (let attempt = 1; ; attempt += 1) {
    const measured = await measureOnce(name, args, options);
    const reason =
      measured.retriedRequests > 0
        ? `the SDK retried ${measured.retriedRequests} request(s)`
        : inexact(measured);
    if (reason === undefined) return measured;
    if (attempt === 3)
      throw new Error(`Three runs of ${name} could not be counted exactly; the last: ${reason}.`);
  }
}

async function measureOnce(
  name: string,
  args: unknown[],
  { longSleeps = 0, timeouts = 0, events = 0, inlineSteps = true, churn = 0 }: MeasureOptions = {},
): Promise<Measured> {
  // A long visibility timeout: no redelivery of a slow activation muddies the counts. Warm instances
  // unless `churn` says otherwise.
  const stack = deployStack(
    emulators,
    { workflows: [steps, sleeps, naps, waits, timedOutWaits, parent, leaf, fanOut] },
    { visibilityTimeoutSeconds: 60, churn, inlineSteps },
  );
  // Another Lambda sending events with the client, on the counted clients.
  const client = createClient(stack.config, {
    clients: { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs },
  });
  try {
    const { runId } = await stack.invokeStart({ workflow: name, args });
    // While the run goes on, the test reads its document only, never its log: a read of the log between a
    // commit and the document's update repairs the document, with the test's uncounted client, and the
    // function's own update then moves no index key (fewer write units than the run alone makes).
    let suspendedAt = 0;
    for (let i = 0; i < events; i += 1) {
      suspendedAt = await waitFor(`wait ${i} of run ${runId}`, async () => {
        const run = await stack.store.getRun(runId);
        return run?.status === "suspended" && run.version > suspendedAt ? run.version : undefined;
      });
      await client.sendEvent(runId, "go", { i });
    }
    // Long timers, one after the other: the sleeps' or the waits' timeouts.
    const longTimers = [
      ...Array.from({ length: longSleeps }, (_, i) => `sleep#${i}`),
      ...Array.from({ length: timeouts }, (_, i) => `hook:go#${i}`),
    ];
    for (const timerId of longTimers) {
      // A timer is sent after its commit and the document's update, so the document is up to date once
      // its schedule exists; skipping time before that would leave the schedule in the past of the fake
      // Scheduler's clock, never to fire.
      const name = scheduleName(runId, timerId);
      await waitFor(`the schedule of ${timerId}`, () =>
        emulators.scheduler.list().some((entry) => entry.name === name) ? true : undefined,
      );
      await stack.skip(2 * DAY + 1_000);
    }
    await stack.waitForStatus(runId, "completed", 30_000);
    // Let the last wake-ups (duplicates of a finished run's activations) land before counting.
    await waitFor("the functions to go idle", () =>
      stack.workflowMapping.busy || stack.stepMapping.busy ? undefined : true,
    );
    await stack.counter.settled();
    const counts = stack.counter.snapshot();
    const log = await stack.events(runId);
    return {
      span: Date.parse(log[log.length - 1]?.timestamp ?? "") - Date.parse(log[0]?.timestamp ?? ""),
      requests: counts.requests,
      writeUnits: counts.writeUnits,
      writes: counts.writes,
      failedWrites: counts.failedWrites,
      readUnits: counts.readUnits,
      emptyReadUnits: counts.emptyReadUnits,
      messages: stack.workflowMapping.stats.records + stack.stepMapping.stats.records,
      retriedRequests: counts.retriedRequests,
      schedulerInvocations: emulators.scheduler.invocations.filter(
        (i) => i.targetArn === stack.queues.stepQueueArn,
      ).length,
      stepBatches: stack.counter.batches
        .filter((b) => b.queueUrl === stack.queues.stepQueueUrl)
        .map((b) => b.size),
    };
  } finally {
    await client.close();
    await stack.stop();
  }
}

/**
 * `measure` of a run of steps alone, whose commits leave its document behind while they follow each other
 * within DOCUMENT_LAG_MS of the document's last update: a run that took longer (a machine stalled for
 * seconds) updates its document on the way, and is measured again.
 */
function measureSteps(args: number[], options: { inlineSteps?: boolean; churn?: number }): Promise<Measured> {
  const key = JSON.stringify([args, options]);
  const known = measuredSteps.get(key);
  if (known) return known;
  const measured = measure("aws_cost_steps", args, options, ({ span }) =>
    span < DOCUMENT_LAG_MS - 1_000
      ? undefined
      : `a run of ${args[0]} step(s) took ${span} ms: the counts are for runs shorter than ${DOCUMENT_LAG_MS} ms`,
  );
  measuredSteps.set(key, measured);
  // A measurement that failed is made again by the next test that asks for it.
  measured.catch(() => measuredSteps.delete(key));
  return measured;
}

/** The runs of steps measured so far, by arguments and options: two tests that compare the same runs share them. */
const measuredSteps = new Map<string, Promise<Measured>>();

/** The writes of two measured runs, for the message of a write-unit count that is not the documented one. */
function writesOf(...measured: Measured[]): string {
  return measured
    .map(
      (m, i) =>
        `run ${i + 1}:\n${m.writes.map((w) => `  ${w.units} ${w.operation} ${w.key} ${w.update ?? ""}`).join("\n")}`,
    )
    .join("\n");
}

/** a + b, per key. */
function sum(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const result = { ...a };
  for (const [key, value] of Object.entries(b)) result[key] = (result[key] ?? 0) + value;
  return result;
}

/** (b - a) / n, per key. */
function perUnit(a: Record<string, number>, b: Record<string, number>, n: number): Record<string, number> {
  const result: Record<string, number> = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const value = ((b[key] ?? 0) - (a[key] ?? 0)) / n;
    if (value !== 0) result[key] = value;
  }
  return result;
}

export function describeCostModel(emulatorsOf: () => Emulators): void {
  describe("AWS cost model (docs/aws.md)", () => {
    beforeAll(() => {
      emulators = emulatorsOf();
    });

    it.each([
      ["inline", true, PER_INLINE_STEP],
      ["queued", false, PER_QUEUED_STEP],
    ] as const)(
      "costs the documented requests, capacity units and messages per sequential step (%s)",
      async (_, inlineSteps, expected) => {
        // Act
        const one = await measureSteps([1], { inlineSteps });
        const eleven = await measureSteps([11], { inlineSteps });
        // Assess
        expect(perUnit(one.requests, eleven.requests, 10)).toEqual(expected.requests);
        expect((eleven.writeUnits - one.writeUnits) / 10, writesOf(one, eleven)).toBe(expected.writeUnits);
        expect((eleven.readUnits - one.readUnits) / 10).toBe(expected.readUnits);
        expect((eleven.emptyReadUnits - one.emptyReadUnits) / 10).toBe(expected.emptyReadUnits);
        expect((eleven.messages - one.messages) / 10).toBe(expected.messages);
        expect(eleven.failedWrites).toBe(0);
      },
    );

    it("reads as much per queued step at the 50th step as at the 5th (reads do not grow with the log)", async () => {
      // Act
      const one = await measureSteps([1], { inlineSteps: false });
      const eleven = await measureSteps([11], { inlineSteps: false });
      const fiftyOne = await measureSteps([51], { inlineSteps: false });
      // Assess
      expect((eleven.readUnits - one.readUnits) / 10).toBe(PER_QUEUED_STEP.readUnits);
      expect((fiftyOne.readUnits - eleven.readUnits) / 40).toBe(PER_QUEUED_STEP.readUnits);
      // Between the two the log passes 100 events: one segment of it is written (see log-segment.ts), and
      // that commit updates the run document (so that a fresh instance knows to read the segment).
      expect(perUnit(eleven.requests, fiftyOne.requests, 40)).toEqual(
        sum(PER_QUEUED_STEP.requests, { "dynamodb.PutItem": 1 / 40, "dynamodb.UpdateItem": 1 / 40 }),
      );
    });

    it("costs the documented requests per short sleep and per long sleep", async () => {
      // Act: 1 and 3 sleeps of each kind; the first timer of a run is the step function's first activation of it.
      const none = await measure("aws_cost_sleeps", [0, 1_000]);
      const short = await measure("aws_cost_sleeps", [1, 1_000]);
      const shortThree = await measure("aws_cost_sleeps", [3, 1_000]);
      const long = await measure("aws_cost_sleeps", [1, 2 * DAY], { longSleeps: 1 });
      const longThree = await measure("aws_cost_sleeps", [3, 2 * DAY], { longSleeps: 3 });
      // Assess
      expect(none.requests).toEqual(PER_RUN.requests);
      expect(none.writeUnits, writesOf(none)).toBe(PER_RUN.writeUnits);
      expect(none.messages).toBe(PER_RUN.messages);
      expect(perUnit(short.requests, shortThree.requests, 2)).toEqual(PER_SHORT_SLEEP.requests);
      expect((shortThree.messages - short.messages) / 2).toBe(PER_SHORT_SLEEP.messages);
      expect((shortThree.writeUnits - short.writeUnits) / 2, writesOf(short, shortThree)).toBe(
        PER_SHORT_SLEEP.writeUnits,
      );
      expect(shortThree.failedWrites + longThree.failedWrites).toBe(0);
      expect((shortThree.readUnits - short.readUnits) / 2).toBe(PER_SHORT_SLEEP.readUnits);
      expect((shortThree.emptyReadUnits - short.emptyReadUnits) / 2).toBe(PER_SHORT_SLEEP.emptyReadUnits);
      expect(perUnit(none.requests, short.requests, 1)).toEqual(
        sum(PER_SHORT_SLEEP.requests, FIRST_ON_STEP_FUNCTION),
      );
      expect(shortThree.schedulerInvocations).toBe(0);
      expect(perUnit(long.requests, longThree.requests, 2)).toEqual(PER_LONG_SLEEP.requests);
      expect((longThree.messages - long.messages) / 2).toBe(PER_LONG_SLEEP.messages);
      expect((longThree.writeUnits - long.writeUnits) / 2, writesOf(long, longThree)).toBe(
        PER_LONG_SLEEP.writeUnits,
      );
      expect((longThree.readUnits - long.readUnits) / 2).toBe(PER_LONG_SLEEP.readUnits);
      expect((longThree.emptyReadUnits - long.emptyReadUnits) / 2).toBe(PER_LONG_SLEEP.emptyReadUnits);
      expect(longThree.schedulerInvocations / 3).toBe(PER_LONG_SLEEP.schedulerInvocations);
    });

    it("costs a long sleep's requests per wait that times out, and reads consistently (every event stored before the deadline wins)", async () => {
      // Act: 1 and 3 waits, each timed out after 2 days.
      const one = await measure("aws_cost_timeouts", [1], { timeouts: 1 });
      const three = await measure("aws_cost_timeouts", [3], { timeouts: 3 });
      // Assess
      expect(perUnit(one.requests, three.requests, 2)).toEqual(PER_LONG_TIMEOUT.requests);
      expect((three.messages - one.messages) / 2).toBe(PER_LONG_TIMEOUT.messages);
      expect((three.writeUnits - one.writeUnits) / 2, writesOf(one, three)).toBe(PER_LONG_TIMEOUT.writeUnits);
      expect(three.failedWrites).toBe(0);
      expect((three.readUnits - one.readUnits) / 2).toBe(PER_LONG_TIMEOUT.readUnits);
      expect((three.emptyReadUnits - one.emptyReadUnits) / 2).toBe(PER_LONG_TIMEOUT.emptyReadUnits);
      expect(three.schedulerInvocations / 3).toBe(PER_LONG_TIMEOUT.schedulerInvocations);
    });

    it("moves no index key for a short sleep between steps (running, asleep, running again)", async () => {
      // Act: 1 and 3 rounds of an inline step then a 1 s sleep.
      const one = await measure("aws_cost_naps", [1, 1_000]);
      const three = await measure("aws_cost_naps", [3, 1_000]);
      // Assess: a round costs an inline step and a short sleep, no index write on top (listed as running
      // all along, never in the due index). The step after a sleep updates the document (1 WRU): it says
      // suspended until then.
      expect((three.writeUnits - one.writeUnits) / 2, writesOf(one, three)).toBe(
        PER_INLINE_STEP.writeUnits + PER_SHORT_SLEEP.writeUnits + 1,
      );
      expect(perUnit(one.requests, three.requests, 2)).toEqual(
        sum(sum(PER_INLINE_STEP.requests, PER_SHORT_SLEEP.requests), { "dynamodb.UpdateItem": 1 }),
      );
    });

    it("costs the documented requests per event received and per child run", async () => {
      // Act
      const none = await measure("aws_cost_waits", [0]);
      const two = await measure("aws_cost_waits", [2], { events: 2 });
      const noChild = await measure("aws_cost_parent", [0]);
      const twoChildren = await measure("aws_cost_parent", [2]);
      // Assess
      expect(perUnit(none.requests, two.requests, 2)).toEqual(PER_EVENT.requests);
      expect((two.writeUnits - none.writeUnits) / 2, writesOf(none, two)).toBe(PER_EVENT.writeUnits);
      expect((two.readUnits - none.readUnits) / 2).toBe(PER_EVENT.readUnits);
      expect((two.messages - none.messages) / 2).toBe(PER_EVENT.messages);
      expect(perUnit(noChild.requests, twoChildren.requests, 2)).toEqual(PER_CHILD.requests);
      // Transactions in AWS billing (see `transactionWriteUnits`): DynamoDB Local reports them at up to twice it.
      expect((twoChildren.writeUnits - noChild.writeUnits) / 2, writesOf(noChild, twoChildren)).toBe(
        PER_CHILD.writeUnits,
      );
      expect((twoChildren.readUnits - noChild.readUnits) / 2).toBe(PER_CHILD.readUnits);
      expect((twoChildren.messages - noChild.messages) / 2).toBe(PER_CHILD.messages);
    });

    it("reads the run and its log again per queued step when every invocation is cold", async () => {
      // Act
      const one = await measureSteps([1], { inlineSteps: false, churn: 1 });
      const eleven = await measureSteps([11], { inlineSteps: false, churn: 1 });
      // Assess: two more reads than warm, and read units that grow with the log (not flat yet).
      expect(perUnit(one.requests, eleven.requests, 10)).toEqual(PER_COLD_QUEUED_STEP.requests);
      expect((eleven.messages - one.messages) / 10).toBe(PER_COLD_QUEUED_STEP.messages);
      expect((eleven.readUnits - one.readUnits) / 10).toBeGreaterThan(PER_QUEUED_STEP.readUnits);
    });

    it("sends the tasks of parallel steps in one request", async () => {
      const fan = await measure("aws_cost_fan_out", [10]);
      expect(fan.stepBatches).toEqual([10]);
    });
  });
}
