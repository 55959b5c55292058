import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { optional } from "../../core/optional.ts";
import { ConditionalCheckFailedException, GetCommand, PutCommand } from "./dynamodb-sdk.ts";
import { byteLength } from "./limits.ts";

/** Where a {@link VersionedItem} lives and how hard it tries. */
export interface VersionedItemOptions {
  documents: DynamoDBDocumentClient;
  tableName: string;
  /** The attribute that holds the JSON state. */
  attribute: string;
  /** Tries of a read-modify-write that lost a race with another writer before it gives up. */
  maxConflicts: number;
}

/** What a change of a versioned item writes back: its new state, and its expiry (epoch seconds, the table's TTL) if any. */
export interface VersionedWrite<S> {
  state: S;
  ttl?: number;
}

/**
 * Bytes of JSON state kept in one item, below DynamoDB's 400 KB so that the keys and the other attributes
 * fit. Flow-control stores check it before they write, to refuse (or answer differently) in time.
 */
export const VERSIONED_STATE_BYTES = 350 * 1024;

/**
 * One JSON document in one item of the kit's table (`pk`, `sk`), changed by a read then a put conditional
 * on the item's version: concurrent writers (Lambdas) never both win, and one that lost reads again after
 * a short random pause. The flow-control stores keep each limit key's state this way.
 */
export class VersionedItem<S> {
  constructor(
    private readonly options: VersionedItemOptions,
    private readonly empty: () => S,
  ) {}

  /** The state of the item, or the empty state, with its version (0 when absent). */
  async read(pk: string, sk: string): Promise<{ state: S; version: number }> {
    const { documents, tableName } = this.options;
    const { Item } = await documents.send(
      new GetCommand({ TableName: tableName, Key: { pk, sk }, ConsistentRead: true }),
    );
    if (!Item) return { state: this.empty(), version: 0 };
    return { state: JSON.parse(String(Item[this.options.attribute])) as S, version: Number(Item.version) };
  }

  /**
   * Applies `change` to the item's state and writes it back unless another writer changed it meanwhile (then
   * reads it again and applies `change` once more). `change` returns the answer, and what to write (nothing:
   * the state did not change).
   * @throws the ConditionalCheckFailedException of the last try after `maxConflicts` lost races
   */
  async change<T>(
    pk: string,
    sk: string,
    change: (state: S) => { answer: T; write?: VersionedWrite<S> },
  ): Promise<T> {
    const { documents, tableName, attribute, maxConflicts } = this.options;
    for (let conflicts = 0; ; conflicts += 1) {
      const { state, version } = await this.read(pk, sk);
      const { answer, write } = change(state);
      if (!write) return answer;
      try {
        await documents.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              pk,
              sk,
              [attribute]: JSON.stringify(write.state),
              version: version + 1,
              ...optional("ttl", write.ttl),
            },
            ConditionExpression: version === 0 ? "attribute_not_exists(pk)" : "version = :version",
            ...(version === 0 ? {} : { ExpressionAttributeValues: { ":version": version } }),
          }),
        );
        return answer;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException) || conflicts >= maxConflicts) throw error;
        // Another Lambda changed the key first: read it again, after a short random pause.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * (conflicts + 1)));
      }
    }
  }
}

/** Whether `state` fits one versioned item. */
export function fitsItem(state: unknown): boolean {
  return byteLength(JSON.stringify(state)) <= VERSIONED_STATE_BYTES;
}
