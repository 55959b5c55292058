/**
 * The floor of a tsworkflow function at init: the Powertools logger and the clients every function uses
 * from its first invocation (DynamoDB with the document client, SQS). EventBridge Scheduler and S3 are
 * loaded when a long timer or a large payload needs them.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

const logger = new Logger({ serviceName: "dynamodb-sqs-clients" });
const region = process.env.AWS_REGION;
const clients = {
  dynamodb: DynamoDBDocumentClient.from(new DynamoDBClient({ region })),
  sqs: new SQSClient({ region }),
};

export const handler = async (event: unknown) => {
  logger.info("event", { event, clients: Object.keys(clients) });
  return {};
};
