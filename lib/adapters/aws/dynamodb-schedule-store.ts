import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type {
  ScheduleDeclaration,
  ScheduleError,
  ScheduleState,
  ScheduleStore,
} from "../../ports/schedule-store.ts";
import { mappingErrors } from "./dynamodb-errors.ts";
import {
  ConditionalCheckFailedException,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "./dynamodb-sdk.ts";

/** The partition of the schedules' items in the kit's table (apart from runs and idempotency keys). */
export const SCHEDULES_PK = "SCHEDULES";
const SCHEDULE_PREFIX = "SCHEDULE#";
/** The item that remembers which declarations the last reconcile applied. */
const DECLARED_SK = "DECLARED";

/** A schedule's state on AWS: the port's state and what the last reconcile declared. */
export interface AwsScheduleState extends ScheduleState {
  /** The workflow each tick starts (so that `triggerSchedule` works from any client). */
  workflow: string;
  args: unknown[];
  /** The hash of the schedule's EventBridge request: a change means UpdateSchedule. */
  fingerprint: string;
}

/** Options of {@link DynamoDBScheduleStore}. */
export interface DynamoDBScheduleStoreOptions {
  client: DynamoDBClient;
  tableName: string;
}

/**
 * Schedule state in the kit's DynamoDB table, one item per schedule under `pk = SCHEDULES`,
 * `sk = SCHEDULE#<name>` (one Query lists them), each field its own attribute so that a tick (last run)
 * and a pause (paused) never overwrite each other's change.
 * @example
 * import { DynamoDBScheduleStore } from "tsworkflow/aws";
 * const store = new DynamoDBScheduleStore({ client: new DynamoDBClient({}), tableName: "tsworkflow" });
 */
export class DynamoDBScheduleStore implements ScheduleStore {
  private readonly documents: DynamoDBDocumentClient;
  private readonly tableName: string;

  constructor(options: DynamoDBScheduleStoreOptions) {
    this.documents = mappingErrors(
      DynamoDBDocumentClient.from(options.client, { marshallOptions: { removeUndefinedValues: true } }),
      options.tableName,
    );
    this.tableName = options.tableName;
  }

  async get(name: string): Promise<AwsScheduleState | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: this.key(name), ConsistentRead: true }),
    );
    return Item ? stateOf(Item) : undefined;
  }

  async list(): Promise<AwsScheduleState[]> {
    const states: AwsScheduleState[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
          ExpressionAttributeValues: { ":pk": SCHEDULES_PK, ":prefix": SCHEDULE_PREFIX },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) states.push(stateOf(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return states;
  }

  async put(state: AwsScheduleState): Promise<void> {
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        // JSON text, as the args: a map attribute need not keep the order of its keys.
        Item: {
          ...this.key(state.name),
          ...state,
          args: JSON.stringify(state.args),
          ...(state.declaration ? { declaration: JSON.stringify(state.declaration) } : {}),
        },
      }),
    );
  }

  /** Sets some fields of an existing schedule's state (and removes `remove`); false when there is none. */
  async update(
    name: string,
    set: Partial<Omit<AwsScheduleState, "name" | "args" | "declaration">>,
    remove: ("lastRunId" | "bufferedTick" | "lastError")[] = [],
  ): Promise<boolean> {
    const entries = Object.entries(set).filter(([, value]) => value !== undefined);
    const clauses = [
      entries.length > 0 ? `SET ${entries.map(([field]) => `#${field} = :${field}`).join(", ")}` : "",
      remove.length > 0 ? `REMOVE ${remove.map((field) => `#${field}`).join(", ")}` : "",
    ].filter(Boolean);
    if (clauses.length === 0) return true;
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(name),
          UpdateExpression: clauses.join(" "),
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeNames: Object.fromEntries(
            [...entries.map(([field]) => field), ...remove].map((field) => [`#${field}`, field]),
          ),
          ...(entries.length > 0
            ? {
                ExpressionAttributeValues: Object.fromEntries(
                  entries.map(([field, value]) => [`:${field}`, value]),
                ),
              }
            : {}),
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async delete(name: string): Promise<void> {
    await this.documents.send(new DeleteCommand({ TableName: this.tableName, Key: this.key(name) }));
  }

  /** The hash of the declarations the last reconcile applied. */
  async declared(): Promise<string | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: SCHEDULES_PK, sk: DECLARED_SK },
        ConsistentRead: true,
      }),
    );
    return Item?.hash as string | undefined;
  }

  async setDeclared(hash: string): Promise<void> {
    await this.documents.send(
      new PutCommand({ TableName: this.tableName, Item: { pk: SCHEDULES_PK, sk: DECLARED_SK, hash } }),
    );
  }

  private key(name: string): { pk: string; sk: string } {
    return { pk: SCHEDULES_PK, sk: `${SCHEDULE_PREFIX}${name}` };
  }
}

function stateOf(item: Record<string, unknown>): AwsScheduleState {
  return {
    name: item.name as string,
    paused: item.paused === true,
    lastTick: Number(item.lastTick),
    workflow: item.workflow as string,
    args: JSON.parse(item.args as string) as unknown[],
    fingerprint: item.fingerprint as string,
    ...(item.lastRunId === undefined ? {} : { lastRunId: item.lastRunId as string }),
    ...(item.lastFiredTick === undefined ? {} : { lastFiredTick: Number(item.lastFiredTick) }),
    ...(item.bufferedTick === undefined ? {} : { bufferedTick: Number(item.bufferedTick) }),
    ...(item.lastError === undefined ? {} : { lastError: item.lastError as ScheduleError }),
    ...(item.declaration === undefined
      ? {}
      : { declaration: JSON.parse(item.declaration as string) as ScheduleDeclaration }),
  };
}
