import { afterAll, describe, expect, it } from "vitest";
import { DynamoDBSlotStore } from "../../../lib/adapters/aws/dynamodb-slot-store.ts";
import { sleep } from "../../../lib/core/primitives.ts";
import { step } from "../../../lib/core/step.ts";
import { workflow } from "../../../lib/core/workflow.ts";
import { RunLimits } from "../../../lib/engine/run-limits.ts";
import { deployStack, type Emulators, type Stack } from "../harness/aws-stack.ts";

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

export function describeFlowControl(emulatorsOf: () => Emulators): void {
  describe("run concurrency on the AWS runtime (DynamoDBSlotStore)", () => {
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
        expect(await slotsOf().inspect(`run:aws_flow_sync_account:${customer}`, Date.now())).toEqual({
          holding: [],
          waiting: [],
        });
      }
    }, 120_000);
  });
}
