import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SlotAnswer, SlotRequest, SlotStore } from "../../ports/slot-store.ts";
import type { StepParking } from "../../ports/step-parking.ts";
import type { StepTask } from "../../ports/task-queue.ts";
import { mappingErrors } from "./dynamodb-errors.ts";
import { DynamoDBDocumentClient, GetCommand, PutCommand } from "./dynamodb-sdk.ts";
import { fitsItem, VersionedItem } from "./versioned-item.ts";

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
const parkedSk = (holder: string) => `PARKED#${holder}`;

/**
 * Concurrency slots in the kit's DynamoDB table, one item per limit key (`pk = SLOTS#<key>`, `sk = SLOTS`):
 * its holders and its line as one JSON attribute, changed by a read then a put conditional on the item's
 * version, so that concurrent Lambdas never exceed the limit (a writer that lost the race reads again).
 * Slots and places in line are leases on the caller's clock, as in every slot store.
 *
 * One item per key bounds the line to what 350 KB of JSON holds: some 3,500 waiters with step holders
 * (`<runId>/<stepId>/<attempt>`, about 100 bytes each). A caller that finds the line full is answered
 * `"waiting"` without a place: it is not lost, it asks again at its next re-check and takes a place once
 * the line has room (the order among such callers is not kept).
 *
 * It also parks the step tasks that wait for a slot on AWS (`StepParking`): one item per waiting attempt
 * (`pk = SLOTS#<key>`, `sk = PARKED#<holder>`, the task as JSON, expiring with its place in line through
 * the table's TTL), read by the Lambda that releases a slot to send the first in line again. A task over
 * 350 KB is not parked: it comes back at its re-check only.
 * @example
 * import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
 * import { DynamoDBSlotStore } from "tsworkflow/aws";
 * const slots = new DynamoDBSlotStore({ client: new DynamoDBClient({}), tableName: "tsworkflow" });
 */
export class DynamoDBSlotStore implements SlotStore, StepParking {
  private readonly items: VersionedItem<KeySlots>;
  private readonly documents: DynamoDBDocumentClient;
  private readonly tableName: string;

  constructor(options: DynamoDBSlotStoreOptions) {
    this.documents = mappingErrors(DynamoDBDocumentClient.from(options.client), options.tableName);
    this.tableName = options.tableName;
    this.items = new VersionedItem(
      {
        documents: this.documents,
        tableName: options.tableName,
        attribute: "slots",
        maxConflicts: options.maxConflicts ?? 20,
      },
      () => ({ holding: [], waiting: [] }),
    );
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
      const newcomer = position < 0;
      if (newcomer) position = slots.waiting.push({ holder, expiresAt }) - 1;
      else (slots.waiting[position] as KeySlots["waiting"][number]).expiresAt = expiresAt;
      if (position >= limit - slots.holding.length) {
        // A full line keeps no place for a newcomer: it asks again at its next re-check.
        if (newcomer && !fitsItem(slots)) slots.waiting.pop();
        return "waiting";
      }
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
    const { state: slots } = await this.items.read(slotsPk(key), SLOTS_SK);
    return {
      holding: slots.holding.filter((slot) => slot.expiresAt > now).map((slot) => slot.holder),
      waiting: slots.waiting.filter((place) => place.expiresAt > now).map((place) => place.holder),
    };
  }

  /** Keeps a waiting step task (see `StepParking.park`); a task over 350 KB is not kept. */
  async park(key: string, holder: string, task: StepTask, expiresAt: number): Promise<void> {
    if (!fitsItem(task)) return;
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: slotsPk(key),
          sk: parkedSk(holder),
          task: JSON.stringify(task),
          ttl: Math.ceil(expiresAt / 1000),
        },
      }),
    );
  }

  /** One GetItem per holder (a wake asks for the few that fit under the limit: the step function's role has no BatchGetItem). */
  async parked(key: string, holders: readonly string[]): Promise<StepTask[]> {
    const items = await Promise.all(
      holders.map((holder) =>
        this.documents.send(
          new GetCommand({
            TableName: this.tableName,
            Key: { pk: slotsPk(key), sk: parkedSk(holder) },
            ConsistentRead: true,
          }),
        ),
      ),
    );
    return items.flatMap(({ Item }) => (Item ? [JSON.parse(String(Item.task)) as StepTask] : []));
  }

  /** Applies `change` to the key's slots (expired leases dropped first) and writes them back. */
  private change<T>(key: string, now: number, change: (slots: KeySlots) => T): Promise<T> {
    return this.items.change(slotsPk(key), SLOTS_SK, (slots) => {
      slots.holding = slots.holding.filter((slot) => slot.expiresAt > now);
      slots.waiting = slots.waiting.filter((place) => place.expiresAt > now);
      return { answer: change(slots), write: { state: slots } };
    });
  }
}
