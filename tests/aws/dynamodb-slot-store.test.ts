import { describe, expect, it } from "vitest";
import { DynamoDBSlotStore } from "../../lib/adapters/aws/dynamodb-slot-store.ts";
import type { StepTask } from "../../lib/ports/task-queue.ts";
import { describeSlotStoreContract } from "../contract/slot-store-contract.ts";
import { useDynamoDBLocal } from "./harness/dynamodb-tables.ts";

const dynamo = useDynamoDBLocal();

describeSlotStoreContract("DynamoDBSlotStore (DynamoDB Local)", {
  async create() {
    const tableName = await dynamo.freshTable("slot-store");
    return {
      slots: new DynamoDBSlotStore({ client: dynamo.client(), tableName, maxConflicts: 200 }),
      close: async () => {},
    };
  },
});

describe("DynamoDBSlotStore parking (StepParking)", () => {
  const task = (stepId: string, input: unknown[] = ["x"]): StepTask => ({
    runId: "run-1",
    workflowName: "wf",
    stepId,
    stepName: "call_api",
    attempt: 1,
    input,
  });

  it("gives back the parked tasks of the holders asked for, in their order, and nothing for the others", async () => {
    // Prepare
    const tableName = await dynamo.freshTable("slot-store");
    const slots = new DynamoDBSlotStore({ client: dynamo.client(), tableName });
    const expiresAt = Date.now() + 60_000;
    await slots.park("step:call_api:", "run-1/a#0/1", task("a#0"), expiresAt);
    await slots.park("step:call_api:", "run-1/b#0/1", task("b#0"), expiresAt);
    // A task too large for an item is not parked (it comes back at its re-check).
    await slots.park("step:call_api:", "run-1/c#0/1", task("c#0", ["y".repeat(400 * 1024)]), expiresAt);

    // Act
    const parked = await slots.parked("step:call_api:", [
      "run-1/b#0/1",
      "run-1/unknown/1",
      "run-1/a#0/1",
      "run-1/c#0/1",
    ]);

    // Assess
    expect(parked).toEqual([task("b#0"), task("a#0")]);
    expect(await slots.parked("step:other:", ["run-1/a#0/1"])).toEqual([]);
  });
});
