import { afterAll, describe, expect, it, vi } from "vitest";
import { DynamoDBRateLimitStore } from "../../../lib/adapters/aws/dynamodb-rate-limit-store.ts";
import { DynamoDBSlotStore } from "../../../lib/adapters/aws/dynamodb-slot-store.ts";
import { createClient } from "../../../lib/aws/client.ts";
import type { WorkflowEvent } from "../../../lib/core/events.ts";
import { RunLimits } from "../../../lib/engine/run-limits.ts";
import { pendingRunWorkflows } from "../../support/pending-runs.ts";
import { deployStack, type Emulators, type Stack } from "../harness/aws-stack.ts";
import { RecordingRates } from "./flow-control.ts";

/**
 * Runs that have not begun, through the real handlers on the emulators (slots and rates in DynamoDB Local): a
 * run cancelled in line for its slot or its rate limit's start ends without its workflow doing anything and
 * gives its place to the next run; `maxDuration` counts from when a run is let in.
 */

/** What the steps did, in order (`charge A`, `clean-up A`). */
const calls: string[] = [];
const RATE_PERIOD_MS = 3_000;
const { oneAtATime, rated, quick } = pendingRunWorkflows("aws_pr", {
  ratePeriodMs: RATE_PERIOD_MS,
  maxDuration: "3s",
  onStep: (mark, label) => calls.push(`${mark} ${label}`),
});

/** The log of a run cancelled before it began: its start, then its cancellation. */
const CANCELLED_UNBEGUN = ["workflow_started", "cancel_requested", "workflow_cancelled"];
const types = (events: readonly WorkflowEvent[]) => events.map((event) => event.type);

export function describePendingRuns(emulatorsOf: () => Emulators): void {
  describe("runs that have not begun, on the AWS runtime (DynamoDBSlotStore, DynamoDBRateLimitStore)", () => {
    const stacks: Stack[] = [];
    afterAll(async () => {
      for (const stack of stacks) await stack.stop();
    });
    /** A stack whose functions (and a client in another Lambda) enforce the limits, with the grants noted. */
    const limitedStack = (grants = new Map<string, { key: string; at: number }>()) => {
      const emulators = emulatorsOf();
      const table = { client: emulators.dynamo.client(), tableName: emulators.tableName };
      const runLimits = () =>
        new RunLimits({
          slots: new DynamoDBSlotStore(table),
          rates: new RecordingRates(new DynamoDBRateLimitStore(table), grants),
        });
      const stack = deployStack(emulators, { workflows: [oneAtATime, rated, quick] }, { runLimits });
      stacks.push(stack);
      const clients = { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs };
      return { stack, table, client: createClient(stack.config, { clients, runLimits: runLimits() }) };
    };
    const start = async (stack: Stack, name: string, args: unknown[]) =>
      (await stack.invokeStart({ workflow: name, args })).runId;

    it("ends a run cancelled in line for its slot without its workflow doing anything, and lets the next run in", async () => {
      // Prepare: A holds the only slot; B and C wait for it.
      calls.length = 0;
      const { stack, table, client } = limitedStack();
      const a = await start(stack, "aws_pr_one_at_a_time", ["slot-a"]);
      await stack.waitForStatus(a, "suspended", 60_000);
      const b = await start(stack, "aws_pr_one_at_a_time", ["slot-b"]);
      const c = await start(stack, "aws_pr_one_at_a_time", ["slot-c"]);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect((await stack.store.getRun(b))?.status).toBe("pending");

      // Act
      await client.cancelRun(b, "not needed");
      await stack.waitForStatus(b, "cancelled", 60_000);

      // Assess: nothing of B ran, and its place went to C.
      expect(types(await stack.events(b))).toEqual(CANCELLED_UNBEGUN);
      const line = () => new DynamoDBSlotStore(table).inspect("run:aws_pr_one_at_a_time:", Date.now());
      await vi.waitFor(async () => expect(await line()).toEqual({ holding: [a], waiting: [c] }));
      await client.sendEvent(a, "go", null);
      await stack.waitForStatus(c, "suspended", 60_000);
      await client.sendEvent(c, "go", null);
      await stack.waitForStatus(c, "completed", 60_000);
      expect(calls).toEqual(["charge slot-a", "clean-up slot-a", "charge slot-c", "clean-up slot-c"]);
      await client.close();
    }, 120_000);

    it("gives a cancelled run's turn under a workflow rate limit to the next run in line", async () => {
      // Prepare: A starts at once; B's turn comes a period later, C's two periods later.
      calls.length = 0;
      const grants = new Map<string, { key: string; at: number }>();
      const { stack, table, client } = limitedStack(grants);
      const a = await start(stack, "aws_pr_rated", ["rate-a"]);
      const b = await start(stack, "aws_pr_rated", ["rate-b"]);
      const c = await start(stack, "aws_pr_rated", ["rate-c"]);
      await stack.waitForStatus(a, "completed", 60_000);
      expect((await stack.store.getRun(b))?.status).toBe("pending");

      // Act
      await client.cancelRun(b, "not needed");
      await stack.waitForStatus(b, "cancelled", 60_000);
      await stack.waitForStatus(c, "completed", 60_000);

      // Assess: C got its start at B's turn, a period after A's (SQS delays are whole seconds), and B took none.
      expect(types(await stack.events(b))).toEqual(CANCELLED_UNBEGUN);
      expect(calls).toEqual(["charge rate-a", "clean-up rate-a", "charge rate-c", "clean-up rate-c"]);
      const after = (grants.get(c)?.at ?? 0) - (grants.get(a)?.at ?? 0);
      expect(after).toBeGreaterThanOrEqual(RATE_PERIOD_MS);
      expect(after).toBeLessThan(2 * RATE_PERIOD_MS - 500);
      expect(grants.has(b)).toBe(false);
      const { started, waiting } = await new DynamoDBRateLimitStore(table).inspect(
        "run:aws_pr_rated:",
        RATE_PERIOD_MS,
        Date.now(),
      );
      expect([...started, ...waiting]).not.toContain(b);
      await client.close();
    }, 120_000);

    it("counts maxDuration from when each run is let in: a line of runs that each need less than it all complete", async () => {
      // Prepare
      const { stack, client } = limitedStack();

      // Act: A needs 2 s; B waits 2 s, then needs 2 s; C waits 4 s, then needs a moment (maxDuration: 3 s).
      const runIds: string[] = [];
      for (const [label, ms] of [
        ["quick-a", 2_000],
        ["quick-b", 2_000],
        ["quick-c", 10],
      ] as const)
        runIds.push(await start(stack, "aws_pr_quick", [label, ms]));
      const runs = await Promise.all(
        runIds.map((runId) => stack.waitForStatus(runId, ["completed", "failed"], 90_000)),
      );

      // Assess
      expect(runs.map((run) => [run.status, run.error?.name])).toEqual([
        ["completed", undefined],
        ["completed", undefined],
        ["completed", undefined],
      ]);
      expect((await stack.events(runIds[2] as string))[0]).toMatchObject({ maxDurationMs: 3_000 });
      await client.close();
    }, 120_000);
  });
}
