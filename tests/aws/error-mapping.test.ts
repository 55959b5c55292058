import {
  ConditionalCheckFailedException,
  ResourceNotFoundException,
  TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { conditionFailed, mapDynamoDBError } from "../../lib/adapters/aws/dynamodb-errors.ts";
import { DynamoDBRateLimitStore } from "../../lib/adapters/aws/dynamodb-rate-limit-store.ts";
import { DynamoDBScheduleStore } from "../../lib/adapters/aws/dynamodb-schedule-store.ts";
import { DynamoDBSlotStore } from "../../lib/adapters/aws/dynamodb-slot-store.ts";
import { mapSqsError } from "../../lib/adapters/aws/sqs-queue.ts";
import { ConfigurationError, PayloadTooLargeError } from "../../lib/core/errors.ts";
import { useDynamoDBLocal } from "./harness/dynamodb-tables.ts";

const QUEUE = "https://sqs.eu-west-1.amazonaws.com/000000000000/tsworkflow-steps";

describe("mapSqsError", () => {
  it("turns a queue that does not exist into a ConfigurationError naming it", () => {
    for (const code of ["QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"]) {
      const error = mapSqsError(code, "The specified queue does not exist.", QUEUE, 10);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toContain(QUEUE);
    }
  });

  it("turns a message SQS finds too long into a PayloadTooLargeError with its size", () => {
    const entry = mapSqsError(
      "InvalidParameterValue",
      "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.",
      QUEUE,
      300_000,
    );
    const batch = mapSqsError(
      "BatchRequestTooLong",
      "Batch requests cannot be longer than 262144 bytes.",
      QUEUE,
      300_000,
    );
    for (const error of [entry, batch]) {
      expect(error).toBeInstanceOf(PayloadTooLargeError);
      expect(error.message).toContain("300000 bytes");
    }
  });

  it("keeps any other SDK error as it is, and says what SQS said of a failed batch entry", () => {
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
    expect(mapSqsError(throttled.name, throttled.message, QUEUE, 10, throttled)).toBe(throttled);
    const entry = mapSqsError("InternalError", "try again", QUEUE, 10);
    expect(entry.message).toBe(`SQS refused a message on ${QUEUE}: InternalError: try again`);
  });
});

describe("mapDynamoDBError", () => {
  it("turns a missing table into a ConfigurationError naming it, with the SDK's error as cause", () => {
    const missing = new ResourceNotFoundException({ message: "Requested resource not found", $metadata: {} });
    const error = mapDynamoDBError(missing, "orders-table") as Error;
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toContain('No DynamoDB table "orders-table" here');
    expect(error.cause).toBe(missing);
  });

  it("keeps failed conditions and every other SDK error as they are", () => {
    const condition = new ConditionalCheckFailedException({
      message: "The conditional request failed",
      $metadata: {},
    });
    const throttled = Object.assign(new Error("Rate exceeded"), {
      name: "ProvisionedThroughputExceededException",
    });
    expect(mapDynamoDBError(condition, "t")).toBe(condition);
    expect(mapDynamoDBError(throttled, "t")).toBe(throttled);
  });
});

describe("conditionFailed", () => {
  it("is true for a failed condition, alone or in a cancelled transaction, and false for anything else", () => {
    const condition = new ConditionalCheckFailedException({ message: "failed", $metadata: {} });
    const cancelled = new TransactionCanceledException({ message: "cancelled", $metadata: {} });
    expect(conditionFailed(condition)).toBe(true);
    expect(conditionFailed(cancelled)).toBe(true);
    expect(conditionFailed(new Error("ConditionalCheckFailed"))).toBe(false);
    expect(conditionFailed(undefined)).toBe(false);
  });
});

describe("the flow-control and schedule stores on a table that does not exist (DynamoDB Local)", () => {
  const dynamo = useDynamoDBLocal();
  const tableName = "no-such-table";

  it("answer with a ConfigurationError naming the table, not the SDK's ResourceNotFoundException", async () => {
    // Prepare
    const client = dynamo.client();
    const slots = new DynamoDBSlotStore({ client, tableName });
    const rates = new DynamoDBRateLimitStore({ client, tableName });
    const schedules = new DynamoDBScheduleStore({ client, tableName });
    const now = Date.now();
    // Act
    const settled = await Promise.allSettled([
      slots.acquire({ key: "k", limit: 1, holder: "h", token: "t", leaseMs: 1_000, now }),
      rates.take({ key: "k", limit: 1, periodMs: 1_000, holder: "h", now }),
      schedules.get("nightly"),
    ]);
    // Assess
    for (const result of settled) {
      const error = result.status === "rejected" ? (result.reason as Error) : undefined;
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error?.message).toContain(`No DynamoDB table "${tableName}" here`);
      expect((error?.cause as Error | undefined)?.name).toBe("ResourceNotFoundException");
    }
  });
});
