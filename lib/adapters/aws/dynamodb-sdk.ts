/**
 * The DynamoDB SDK classes the store's modules use, imported in this one module. The Lambda handlers'
 * bundle leaves the AWS SDK external (the runtime provides it), and a bundler then keeps one import
 * statement per importing module: importing them once keeps the bundle under its size budget.
 */
export {
  ConditionalCheckFailedException,
  DynamoDBClient,
  TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
export {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
