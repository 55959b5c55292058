import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll } from "vitest";
import { DynamoDBSlotStore } from "../../lib/adapters/aws/dynamodb-slot-store.ts";
import { createTable } from "../../lib/adapters/aws/table-schema.ts";
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
