import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDBSlotStore } from "../../lib/adapters/aws/dynamodb-slot-store.ts";
import { createTable } from "../../lib/adapters/aws/table-schema.ts";
import type { StepTask } from "../../lib/ports/task-queue.ts";
import { describeSlotStoreContract } from "../contract/slot-store-contract.ts";
import { type DynamoDBLocal, startDynamoDBLocal } from "./harness/dynamodb-local.ts";

let dynamo: DynamoDBLocal;
let client: DynamoDBClient;
let tables = 0;

beforeAll(async () => {
  dynamo = await startDynamoDBLocal();
  client = dynamo.client();
}, 120_000);

afterAll(async () => {
  client?.destroy();
  await dynamo?.stop();
});

describeSlotStoreContract("DynamoDBSlotStore (DynamoDB Local)", {
  async create() {
    tables += 1;
    const tableName = `slot-store-${tables}`;
    await createTable(client, tableName);
    return { slots: new DynamoDBSlotStore({ client, tableName, maxConflicts: 200 }), close: async () => {} };
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
    tables += 1;
    const tableName = `slot-store-${tables}`;
    await createTable(client, tableName);
    const slots = new DynamoDBSlotStore({ client, tableName });
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
