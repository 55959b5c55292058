import { itemSize } from "../../../lib/adapters/aws/item-size.ts";
import { TABLE_SCHEMA } from "../../../lib/adapters/aws/table-schema.ts";

/**
 * Counts AWS requests by `<service>.<operation>` through the clients' middleware stacks, and the
 * DynamoDB capacity they consumed (by asking for `ReturnConsumedCapacity: TOTAL`), for the cost model.
 */
export interface RequestCounts {
  requests: Record<string, number>;
  /** DynamoDB write and read capacity units consumed. */
  writeUnits: number;
  readUnits: number;
  /** SQS send requests (single or batch) to standard queues; the others went to FIFO queues. */
  standardSends: number;
  /**
   * What AWS bills for the reads DynamoDB Local reported as 0 units (nothing found): 1 RRU for a strongly
   * consistent one, 0.5 for an eventually consistent one.
   */
  emptyReadUnits: number;
  /**
   * Conditional writes that failed (a commit that lost a race, a document update already past): DynamoDB
   * Local reports no units for them; AWS bills at least 1 WRU each.
   */
  failedWrites: number;
  /** Every DynamoDB write that consumed units, in order: what a count that moved is made of. */
  writes: { operation: string; key: string; units: number; update?: string }[];
  /**
   * Requests the SDK sent more than once (a connection reset under load, say): the capacity an earlier try
   * consumed is in no answer, so units counted while this is not 0 may be short.
   */
  retriedRequests: number;
}

interface CountableClient {
  middlewareStack: {
    add(
      middleware: (
        next: (args: { input: object }) => Promise<{ output: object }>,
        context: { commandName?: string },
      ) => (args: { input: object }) => Promise<{ output: object }>,
      options: { step: "initialize"; name: string; override?: boolean },
    ): void;
  };
}

/** Nothing counted yet. */
const noCounts = (): RequestCounts => ({
  requests: {},
  writeUnits: 0,
  readUnits: 0,
  standardSends: 0,
  emptyReadUnits: 0,
  failedWrites: 0,
  writes: [],
  retriedRequests: 0,
});

export class RequestCounter {
  counts: RequestCounts = noCounts();
  /** Every SQS `SendMessageBatch`: its queue and number of messages. */
  batches: { queueUrl: string; size: number }[] = [];
  /** Requests sent and not answered yet: a request is counted when sent, its capacity when answered. */
  private inFlight = 0;
  private whenSettled: (() => void)[] = [];

  /**
   * Resolves once no counted request awaits its answer: a run's document can say `completed` while the
   * update that wrote it has not returned its consumed capacity yet, so snapshots are taken after this.
   */
  settled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.whenSettled.push(resolve));
  }

  /** Starts counting the requests `client` sends, as `<service>.<operation>`. */
  watch(client: object, service: string): void {
    (client as CountableClient).middlewareStack.add(
      (next, context) => async (args) => {
        this.inFlight += 1;
        try {
          return await this.count(service, next, context, args);
        } finally {
          this.inFlight -= 1;
          if (this.inFlight === 0) for (const resolve of this.whenSettled.splice(0)) resolve();
        }
      },
      { step: "initialize", name: `tsworkflowRequestCounter-${service}`, override: true },
    );
  }

  private async count(
    service: string,
    next: (args: { input: object }) => Promise<{ output: object }>,
    context: { commandName?: string },
    args: { input: object },
  ): Promise<{ output: object }> {
    const operation = (context.commandName ?? "Unknown").replace(/Command$/, "");
    const key = `${service}.${operation}`;
    this.counts.requests[key] = (this.counts.requests[key] ?? 0) + 1;
    if (
      key.startsWith("sqs.SendMessage") &&
      !(args.input as { QueueUrl?: string }).QueueUrl?.endsWith(".fifo")
    )
      this.counts.standardSends += 1;
    if (key === "sqs.SendMessageBatch") {
      const input = args.input as { QueueUrl?: string; Entries?: unknown[] };
      this.batches.push({ queueUrl: input.QueueUrl ?? "", size: input.Entries?.length ?? 0 });
    }
    if (service === "dynamodb")
      (args.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity = "TOTAL";
    const result = await next(args).catch((error: unknown) => {
      const name = (error as { name?: string }).name;
      if (name === "ConditionalCheckFailedException" || name === "TransactionCanceledException")
        this.counts.failedWrites += 1;
      throw error;
    });
    if (((result.output as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) > 1)
      this.counts.retriedRequests += 1;
    if (service === "dynamodb") {
      const before = this.counts.readUnits;
      const written = this.counts.writeUnits;
      const billed = operation === "TransactWriteItems" ? transactionWriteUnits(args.input) : undefined;
      if (billed !== undefined) this.counts.writeUnits += billed;
      else this.addCapacity(operation, (result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity);
      if (this.counts.writeUnits !== written)
        this.recordWrite(operation, args.input, this.counts.writeUnits - written);
      if ((operation === "Query" || operation === "GetItem") && this.counts.readUnits === before)
        this.counts.emptyReadUnits += (args.input as { ConsistentRead?: boolean }).ConsistentRead ? 1 : 0.5;
    }
    return result;
  }

  reset(): void {
    this.counts = noCounts();
    this.batches = [];
  }

  snapshot(): RequestCounts {
    return structuredClone(this.counts);
  }

  /** Requests of one service (prefix `dynamodb.`, `sqs.`, `scheduler.`), summed. */
  total(service?: string): number {
    return Object.entries(this.counts.requests)
      .filter(([key]) => service === undefined || key.startsWith(`${service}.`))
      .reduce((sum, [, count]) => sum + count, 0);
  }

  private recordWrite(operation: string, input: object, units: number): void {
    const { Key, Item, UpdateExpression } = input as {
      Key?: { pk?: unknown; sk?: unknown };
      Item?: { pk?: unknown; sk?: unknown };
      UpdateExpression?: string;
    };
    const keys = Key ?? Item;
    this.counts.writes.push({
      operation,
      key: keys ? `${String(keys.pk)} ${String(keys.sk)}` : "",
      units,
      ...(UpdateExpression ? { update: UpdateExpression } : {}),
    });
  }

  private addCapacity(operation: string, consumed: unknown): void {
    const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
    const writes = new Set(["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"]);
    for (const entry of list as {
      CapacityUnits?: number;
      WriteCapacityUnits?: number;
      ReadCapacityUnits?: number;
    }[]) {
      if (entry.WriteCapacityUnits !== undefined || entry.ReadCapacityUnits !== undefined) {
        this.counts.writeUnits += entry.WriteCapacityUnits ?? 0;
        this.counts.readUnits += entry.ReadCapacityUnits ?? 0;
      } else if (writes.has(operation)) {
        this.counts.writeUnits += entry.CapacityUnits ?? 0;
      } else {
        this.counts.readUnits += entry.CapacityUnits ?? 0;
      }
    }
  }
}

/** The GSIs of the table: an item that has an index's key attributes writes an entry there. */
const INDEXES = [TABLE_SCHEMA.byStatusIndex, TABLE_SCHEMA.byWorkflowIndex, TABLE_SCHEMA.byDueIndex];

/**
 * What AWS bills a `TransactWriteItems` of puts, from the request: 2 WCU per KB (rounded up) of each item,
 * and 2 per entry it writes in a (keys-only, so under 1 KB) index. DynamoDB Local reports transactions with
 * no such rule: one put of an item with two index keys as 12 units (AWS: 6), a document and a commit as 16
 * (AWS: 8), two plain items as 4 (AWS: 4). Undefined (use the reported units) for other kinds of item.
 */
export function transactionWriteUnits(input: object): number | undefined {
  const items =
    (input as { TransactItems?: { Put?: { Item?: Record<string, unknown> } }[] }).TransactItems ?? [];
  let units = 0;
  for (const entry of items) {
    const item = entry.Put?.Item;
    // The document client's items (marshalled ones, from a bare client, are left to the reported units).
    if (!item || Object.keys(entry).length !== 1 || typeof item.pk !== "string") return undefined;
    units += 2 * Math.ceil(itemSize(item) / 1024);
    for (const index of INDEXES)
      if (item[index.partitionKey] !== undefined && item[index.sortKey] !== undefined) units += 2;
  }
  return units;
}
