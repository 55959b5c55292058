import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { ConfigurationError } from "../../core/errors.ts";
import { ConditionalCheckFailedException, TransactionCanceledException } from "./dynamodb-sdk.ts";

/**
 * DynamoDB's failures as tsworkflow errors, in one place: a table that does not exist is a
 * `ConfigurationError` saying how to create it; anything else stays the SDK's error (a throttle or an
 * outage, which a redelivery retries; a failed condition, which the store reads with
 * {@link conditionFailed}). Items over DynamoDB's limit never reach it: `assertItemFits` refuses them
 * with a `PayloadTooLargeError` before the call.
 */
export function mapDynamoDBError(error: unknown, tableName: string): unknown {
  if ((error as Error | undefined)?.name === "ResourceNotFoundException")
    return new ConfigurationError(
      `No DynamoDB table "${tableName}" here: deploy the DurableWorkflows construct or call createTable(), and pass its name.`,
      { cause: error },
    );
  return error;
}

/**
 * True when a conditional write (or a transaction of them) did not happen because its condition did not
 * hold or another transaction got there first: the store reads it as "already done" or "someone else
 * committed", never as an outage.
 */
export function conditionFailed(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || error instanceof TransactionCanceledException;
}

/** The store's document client, every call's failure passed through {@link mapDynamoDBError}. */
export function mappingErrors(documents: DynamoDBDocumentClient, tableName: string): DynamoDBDocumentClient {
  const send = documents.send.bind(documents) as (...args: unknown[]) => Promise<unknown>;
  documents.send = ((...args: unknown[]) =>
    send(...args).catch((error: unknown) => {
      throw mapDynamoDBError(error, tableName);
    })) as typeof documents.send;
  return documents;
}
