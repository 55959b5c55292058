import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { DynamoDBRateLimitStore } from "../../lib/adapters/aws/dynamodb-rate-limit-store.ts";
import { VERSIONED_STATE_BYTES } from "../../lib/adapters/aws/versioned-item.ts";
import { ConfigurationError } from "../../lib/core/errors.ts";
import { describeRateLimitStoreContract } from "../contract/rate-limit-store-contract.ts";
import { useDynamoDBLocal } from "./harness/dynamodb-tables.ts";

const dynamo = useDynamoDBLocal();

async function freshStore(): Promise<{ rates: DynamoDBRateLimitStore; tableName: string }> {
  const tableName = await dynamo.freshTable("rate-store");
  return {
    rates: new DynamoDBRateLimitStore({ client: dynamo.client(), tableName, maxConflicts: 200 }),
    tableName,
  };
}

describeRateLimitStoreContract("DynamoDBRateLimitStore (DynamoDB Local)", {
  async create() {
    return { rates: (await freshStore()).rates, close: async () => {} };
  },
});

describe("DynamoDBRateLimitStore item bounds", () => {
  const T0 = Date.parse("2030-01-01T00:00:00.000Z");
  const PERIOD = 60_000;
  /** A step holder as the step limits write it: `<runId>/<stepId>/<attempt>`. */
  const holder = (index: number) =>
    `01JEXAMPLE0RUN0ID00000000${String(index).padStart(6, "0")}/send_email#${index}/1`;

  /** How many entries of `holder(i)` nearly fill an item (a few dozen short of it). */
  const nearlyFull =
    Math.floor(VERSIONED_STATE_BYTES / (JSON.stringify([holder(10_000), T0]).length + 1)) - 30;

  /** Writes the key's item as the store keeps it, with `started` starts and `waiting` places in line. */
  async function seed(rates: DynamoDBRateLimitStore, tableName: string, started: number, waiting: number) {
    const state = {
      started: Array.from({ length: started }, (_, index) => [holder(index), T0]),
      waiting: Array.from({ length: waiting }, (_, index) => [holder(started + index), T0 + 3_600_000]),
      periodMs: PERIOD,
    };
    await DynamoDBDocumentClient.from(dynamo.client()).send(
      new PutCommand({
        TableName: tableName,
        Item: { pk: "RATES#k", sk: "RATES", rates: JSON.stringify(state), version: 1 },
      }),
    );
    return rates;
  }

  it("tells a caller that finds the line full when to ask again, without a place, and keeps the line it has", async () => {
    // Prepare: one start in the window and a line that (almost) fills the item
    const { rates, tableName } = await freshStore();
    await seed(rates, tableName, 1, nearlyFull);
    let line = (await rates.inspect("k", PERIOD, T0 + 1)).waiting;
    for (let index = 10_000; ; index += 1) {
      const answer = await rates.take({
        key: "k",
        holder: holder(index),
        limit: 1,
        periodMs: PERIOD,
        now: T0 + 1,
      });
      const after = (await rates.inspect("k", PERIOD, T0 + 1)).waiting;
      if (after.length === line.length) {
        // Assess: the newcomer was answered, the line did not change
        expect(answer.granted).toBe(false);
        expect(answer.granted === false && answer.retryAt).toBeGreaterThan(T0 + PERIOD);
        expect(after).toEqual(line);
        break;
      }
      line = after;
    }
    expect(line.length).toBeGreaterThan(3_000);
  }, 120_000);

  it("refuses a limit whose starts in one period do not fit an item with a ConfigurationError", async () => {
    // Prepare: the window nearly full of starts under a limit that allows many more
    const { rates, tableName } = await freshStore();
    await seed(rates, tableName, nearlyFull, 0);

    // Act
    let refused: unknown;
    for (let index = 10_000; refused === undefined && index < 12_000; index += 1)
      await rates
        .take({ key: "k", holder: holder(index), limit: 100_000, periodMs: PERIOD, now: T0 + 1 })
        .catch((error: unknown) => {
          refused = error;
        });

    // Assess
    expect(refused).toBeInstanceOf(ConfigurationError);
    expect((refused as Error).message).toMatch(/lower the limit/);
  }, 120_000);
});
