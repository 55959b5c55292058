/**
 * The Lambda event and context shapes the handlers read, declared here so that users need no
 * `@types/aws-lambda`. The types of `@types/aws-lambda` (`SQSEvent`, `SQSBatchResponse`, `Context`)
 * are assignable to these, so handlers typed with them work unchanged.
 */

/** One record of an SQS event. */
export interface SqsRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: {
    ApproximateReceiveCount: string;
    /** Set on records from a FIFO queue. */
    MessageGroupId?: string | undefined;
  };
}

/** The event of an SQS event source mapping. */
export interface SqsEvent {
  Records: SqsRecord[];
}

/** The answer that reports partial batch failures (`ReportBatchItemFailures`). */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** The Lambda invocation context (what the handlers and their structured logs use of it). */
export interface LambdaContext {
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  getRemainingTimeInMillis(): number;
}

/** A DynamoDB attribute value as a stream record carries it (only the string form is read). */
export interface StreamAttributeValue {
  S?: string | undefined;
}

/** One record of a DynamoDB stream event (the part the reaper reads). */
export interface DynamoDbStreamRecord {
  eventName?: "INSERT" | "MODIFY" | "REMOVE" | undefined;
  userIdentity?: { type?: string | undefined; principalId?: string | undefined } | undefined;
  dynamodb?: { OldImage?: Record<string, StreamAttributeValue> | undefined } | undefined;
}

/** The event of a DynamoDB stream event source mapping. */
export interface DynamoDbStreamEvent {
  Records: DynamoDbStreamRecord[];
}
