import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { S3Payloads } from "./s3-payloads.ts";

/** What the modules of the DynamoDB store share: the table, and where large payloads go. */
export interface StoreContext {
  documents: DynamoDBDocumentClient;
  tableName: string;
  /** Offloads and reads payloads; undefined when the store has no S3 payload bucket. */
  payloads: S3Payloads | undefined;
  /** Reads stored references (a default S3 client when the store was given none). */
  reader: () => S3Payloads;
}
