import { ConditionalCheckFailedException, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { SlotAnswer, SlotRequest, SlotStore } from "../../ports/slot-store.ts";

/** A limit key's slots in one item: holders with their token and lease end, then the line in arrival order. */
interface KeySlots {
  holding: { holder: string; token: string; expiresAt: number }[];
  waiting: { holder: string; expiresAt: number }[];
}

/** Options of {@link DynamoDBSlotStore}. */
export interface DynamoDBSlotStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Tries of a read-modify-write that lost a race with another writer before it gives up. @default 20 */
  maxConflicts?: number;
}

const slotsPk = (key: string) => `SLOTS#${key}`;
const SLOTS_SK = "SLOTS";

/**
 * Concurrency slots in the kit's DynamoDB table, one item per limit key (`pk = SLOTS#<key>`, `sk = SLOTS`):
 * its holders and its line as one JSON attribute, changed by a read then a put conditional on the item's
 * version, so that concurrent Lambdas never exceed the limit (a writer that lost the race reads again).
 * Slots and places in line are leases on the caller's clock, as in every slot store. One item per key
 * bounds a line to what 400 KB holds (some 4,000 waiters).
 * @example
 * import { DynamoDBSlotStore } from "tsworkflow/aws";
 * const slots = new DynamoDBSlotStore({ client: new DynamoDBClient({}), tableName: "tsworkflow" });
 */
export class DynamoDBSlotStore implements SlotStore {
  private readonly documents: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly maxConflicts: number;

  constructor(options: DynamoDBSlotStoreOptions) {
    this.documents = DynamoDBDocumentClient.from(options.client);
    this.tableName = options.tableName;
    this.maxConflicts = options.maxConflicts ?? 20;
  }

  acquire({ key, holder, token, limit, leaseMs, now }: SlotRequest): Promise<SlotAnswer> {
    return this.change(key, now, (slots) => {
      const expiresAt = now + leaseMs;
      const held = slots.holding.find((slot) => slot.holder === holder);
      if (held) {
        if (held.token !== token) return "held";
        held.expiresAt = expiresAt;
        return "granted";
      }
      // A holder already in line keeps its place; a new one goes to the end.
      let position = slots.waiting.findIndex((place) => place.holder === holder);
      if (position < 0) position = slots.waiting.push({ holder, expiresAt }) - 1;
      else (slots.waiting[position] as KeySlots["waiting"][number]).expiresAt = expiresAt;
      if (position >= limit - slots.holding.length) return "waiting";
      slots.waiting.splice(position, 1);
      slots.holding.push({ holder, token, expiresAt });
      return "granted";
    });
  }

  async release(key: string, holder: string, token: string): Promise<void> {
    await this.change(key, Number.NEGATIVE_INFINITY, (slots) => {
      slots.holding = slots.holding.filter((slot) => slot.holder !== holder || slot.token !== token);
      slots.waiting = slots.waiting.filter((place) => place.holder !== holder);
    });
  }

  async inspect(key: string, now: number): Promise<{ holding: string[]; waiting: string[] }> {
    const { slots } = await this.read(key);
    return {
      holding: slots.holding.filter((slot) => slot.expiresAt > now).map((slot) => slot.holder),
      waiting: slots.waiting.filter((place) => place.expiresAt > now).map((place) => place.holder),
    };
  }

  /** Applies `change` to the key's slots (expired leases dropped first) and writes them back if nobody wrote meanwhile. */
  private async change<T>(key: string, now: number, change: (slots: KeySlots) => T): Promise<T> {
    for (let conflicts = 0; ; conflicts += 1) {
      const { slots, version } = await this.read(key);
      slots.holding = slots.holding.filter((slot) => slot.expiresAt > now);
      slots.waiting = slots.waiting.filter((place) => place.expiresAt > now);
      const answer = change(slots);
      try {
        await this.documents.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { pk: slotsPk(key), sk: SLOTS_SK, slots: JSON.stringify(slots), version: version + 1 },
            ConditionExpression: version === 0 ? "attribute_not_exists(pk)" : "version = :version",
            ...(version === 0 ? {} : { ExpressionAttributeValues: { ":version": version } }),
          }),
        );
        return answer;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException) || conflicts >= this.maxConflicts)
          throw error;
        // Another Lambda changed the key first: read it again, after a short random pause.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * (conflicts + 1)));
      }
    }
  }

  private async read(key: string): Promise<{ slots: KeySlots; version: number }> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: slotsPk(key), sk: SLOTS_SK },
        ConsistentRead: true,
      }),
    );
    if (!Item) return { slots: { holding: [], waiting: [] }, version: 0 };
    return { slots: JSON.parse(String(Item.slots)) as KeySlots, version: Number(Item.version) };
  }
}
