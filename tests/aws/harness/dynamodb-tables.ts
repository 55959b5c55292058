import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll } from "vitest";
import { createTable } from "../../../lib/adapters/aws/table-schema.ts";
import { type DynamoDBLocal, folderDynamoDBLocal } from "./dynamodb-local.ts";

/**
 * DynamoDB Local for the tests of one file (the folder's, or one started before them and stopped after them:
 * see `folderDynamoDBLocal`), with a client and a fresh kit table for each test that asks.
 */
export function useDynamoDBLocal(): {
  client(): DynamoDBClient;
  freshTable(prefix: string): Promise<string>;
} {
  let dynamo: DynamoDBLocal | undefined;
  let client: DynamoDBClient | undefined;
  let tables = 0;
  beforeAll(async () => {
    dynamo = await folderDynamoDBLocal();
    client = dynamo.client();
  }, 120_000);
  afterAll(async () => {
    client?.destroy();
    await dynamo?.stop();
  });
  const started = (): DynamoDBClient => {
    if (!client) throw new Error("DynamoDB Local did not start.");
    return client;
  };
  return {
    client: started,
    async freshTable(prefix) {
      tables += 1;
      const tableName = `${prefix}-${tables}`;
      await createTable(started(), tableName);
      return tableName;
    },
  };
}
