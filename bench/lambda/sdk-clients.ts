/**
 * The floor of any handler that uses DynamoDB, SQS and EventBridge Scheduler: the Powertools logger and
 * the SDK clients tsworkflow's AWS runtime creates, nothing else.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SchedulerClient } from "@aws-sdk/client-scheduler";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

const logger = new Logger({ serviceName: "sdk-clients" });
const region = process.env.AWS_REGION;
const clients = {
  dynamodb: DynamoDBDocumentClient.from(new DynamoDBClient({ region })),
  sqs: new SQSClient({ region }),
  scheduler: new SchedulerClient({ region }),
};

export const handler = async (event: unknown) => {
  logger.info("event", { event, clients: Object.keys(clients) });
  return {};
};
