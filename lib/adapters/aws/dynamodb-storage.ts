import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import {
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { LRUCache } from "lru-cache";
import { InvalidEventError, VersionConflictError } from "../../core/errors.ts";
import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import { MAX_PAYLOAD_BYTES } from "../../core/serialization.ts";
import {
  type CreateRunResult,
  type EventStore,
  FINISHED_STATUSES,
  type NewRun,
  type RunPage,
  type RunPatch,
  type RunQuery,
  type RunRecord,
  type StepOutcome,
  type StoreLimits,
} from "../../ports/event-store.ts";
import { commitItems, type Item, readCommits, type StoredCommit, transactionToken } from "./commit-items.ts";
import { assertItemFits } from "./item-size.ts";
import {
  COMMIT_PREFIX,
  commitSk,
  IDEM_SK,
  idemPk,
  OUTCOME_PREFIX,
  outcomeSk,
  RUN_SK,
  runPk,
} from "./keys.ts";
import { S3_MAX_PAYLOAD_BYTES } from "./limits.ts";
import { outcomeItem, outcomeOf } from "./outcome-items.ts";
import { documentUpdate, dueAt, newRunDocument, toRecord } from "./run-document.ts";
import { dueDocuments, listRunPage, staleDocuments } from "./run-listing.ts";
import { S3Payloads } from "./s3-payloads.ts";
import type { StoreContext } from "./store-context.ts";

/** Options of {@link DynamoDBStorage}. */
export interface DynamoDBStorageOptions {
  /**
   * The client to use; the store does not destroy a client it was given.
   * @default a new `DynamoDBClient` with the default credential chain and region
   */
  client?: DynamoDBClient;
  /** The table, created with `createTable()` or the CDK construct (layout in `TABLE_SCHEMA`). */
  tableName: string;
  /**
   * Days a finished run is kept: its document expires (DynamoDB TTL) this long after the run finished,
   * and the reaper then deletes the rest of the run (see `createReaperHandler`).
   * @default 30
   */
  ttlDays?: number;
  /**
   * Where payloads over 64 KB go (the construct's payload bucket): with it, payloads may be up to
   * 10 MB and every item stays small; without it, payloads are capped at `MAX_PAYLOAD_BYTES` (255 KB).
   * Give `S3Payloads` without a bucket to read references only (the CLI).
   * @default none: nothing is offloaded; stored references are read with a default `S3Client`
   */
  payloads?: S3Payloads;
  /**
   * How many runs' commit boundaries the store remembers, to commit without a read.
   * @default 10000
   */
  cacheSize?: number;
}

const DAY_SECONDS = 86_400;
const MAX_CREATE_ATTEMPTS = 30;

/** What the store knows about a run without asking DynamoDB again. */
interface RunFacts {
  /** Versions at which a commit ended: committing there needs no read (see `commit`). */
  boundaries: Set<number>;
  /** The highest version the run document is known to hold. */
  documentVersion?: number;
  /** True when the run is a child run (its finish must reach its parent: the sweeper checks). */
  child?: boolean;
}

/**
 * The DynamoDB event store: one table, one item per commit, no transaction on the hot path.
 *
 * A commit is one conditional `PutItem` of `sk = COMMIT#<first seq>` (`attribute_not_exists`): two
 * writers at the same version cannot both succeed. A writer with a stale version either collides with
 * the commit that starts where its version ends, or (when its version is not where a commit ended)
 * fails the boundary check, which needs no read when this process has seen the run's log. The run
 * document is updated right after the commit (monotonic on `version`) and repaired on the next read
 * of the log if a crash fell in between. Every item fits by construction: payloads over 64 KB go to
 * S3 (with `payloads`), the document keeps only small values, and a guard checks each item's size
 * before it is written.
 *
 * @example
 * import { DynamoDBStorage } from "tsworkflow/aws";
 * const store = new DynamoDBStorage({ tableName: process.env.TSWORKFLOW_TABLE_NAME as string });
 */
export class DynamoDBStorage implements EventStore {
  readonly limits: StoreLimits;
  private readonly client: DynamoDBClient;
  private readonly ownsClient: boolean;
  private readonly context: StoreContext;
  private readonly ttlSeconds: number;
  private readonly facts: LRUCache<string, RunFacts>;
  private defaultReader: S3Payloads | undefined;

  constructor(options: DynamoDBStorageOptions) {
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new DynamoDBClient({});
    const documents = DynamoDBDocumentClient.from(this.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    const payloads = options.payloads;
    this.context = {
      documents,
      tableName: options.tableName,
      payloads,
      reader: () => {
        if (payloads) return payloads;
        // The same region and credentials as the table (the CLI, a dashboard reading runs).
        const { region, credentials } = this.client.config;
        this.defaultReader ??= new S3Payloads({ client: new S3Client({ region, credentials }) });
        return this.defaultReader;
      },
    };
    this.limits = { maxPayloadBytes: payloads?.offloads ? S3_MAX_PAYLOAD_BYTES : MAX_PAYLOAD_BYTES };
    this.ttlSeconds = Math.round((options.ttlDays ?? 30) * DAY_SECONDS);
    this.facts = new LRUCache({ max: options.cacheSize ?? 10_000 });
  }

  private get documents(): DynamoDBDocumentClient {
    return this.context.documents;
  }

  private get tableName(): string {
    return this.context.tableName;
  }

  async createRun(newRun: NewRun): Promise<CreateRunResult> {
    const { run } = newRun;
    assertRunId(run.runId);
    const event = parseEvent(newRun.startedEvent, `run ${run.runId}`);
    const parent = event.type === "workflow_started" ? event.parent : undefined;
    const commit = await commitItems(this.context, run.runId, 1, [event], {
      status: run.status,
      updatedAt: run.updatedAt,
    });
    const offloaded = commit.some((item) => item.refs !== undefined || item.body !== undefined);
    const document = newRunDocument(run, parent?.runId);
    const key = run.idempotencyKey;
    const puts: Item[] = [
      ...(key === undefined
        ? []
        : [{ pk: idemPk(key), sk: IDEM_SK, runId: run.runId, createdAt: run.createdAt }]),
      document,
      ...commit,
    ];
    for (const item of puts) assertItemFits(item, `The start of run ${run.runId}`);
    const transactItems = puts.map((item) => ({
      Put: { TableName: this.tableName, Item: item, ConditionExpression: "attribute_not_exists(pk)" },
    }));

    for (let attempt = 1; ; attempt += 1) {
      try {
        // The token makes an SDK retry after a lost reply succeed instead of failing on its own writes.
        await this.documents.send(
          new TransactWriteCommand({
            TransactItems: transactItems,
            ClientRequestToken: transactionToken("create", run.runId, attempt),
          }),
        );
        this.learn(run.runId, { boundary: 1, documentVersion: 1, child: parent !== undefined });
        return { created: true, run: structuredClone(run) };
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = (error.CancellationReasons ?? []).map((reason) => reason.Code ?? "None");
        const keyTaken = key !== undefined && reasons[0] === "ConditionalCheckFailed";
        const runTaken = reasons.slice(key === undefined ? 0 : 1).includes("ConditionalCheckFailed");
        if (runTaken && !keyTaken) throw new VersionConflictError(run.runId, 0);
        if (key !== undefined) {
          const existing = await this.runHoldingKey(key);
          if (existing) {
            // This start lost to an earlier one: the payloads it put for its own run id are nobody's.
            if (offloaded && this.context.payloads?.bucket)
              await this.context.payloads.deleteRun(this.context.payloads.bucket, run.runId).catch(() => 0);
            return { created: false, run: existing };
          }
        }
        // Lost a race to a transaction that was itself cancelled, or the key's run expired: try again.
        if (attempt >= MAX_CREATE_ATTEMPTS) throw error;
        await pause(Math.min(200, 5 * attempt) + Math.random() * 20 * attempt);
      }
    }
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    assertRunId(runId);
    const item = await this.getDocument(runId);
    if (!item) return undefined;
    this.learn(runId, { documentVersion: item.version as number, boundary: item.version as number });
    return toRecord(this.context, item);
  }

  /** One page of runs, newest first; `nextCursor` leads to the next page. */
  listRunPage(query: RunQuery = {}): Promise<RunPage> {
    return listRunPage(this.context, query);
  }

  async listRuns(query: RunQuery = {}): Promise<RunRecord[]> {
    return (await this.listRunPage(query)).runs;
  }

  async getEvents(runId: string): Promise<WorkflowEvent[]> {
    assertRunId(runId);
    const [items, documentVersion] = await Promise.all([
      this.queryAll({
        TableName: this.tableName,
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues: { ":pk": runPk(runId), ":prefix": COMMIT_PREFIX },
        ConsistentRead: true,
      }),
      this.knownDocumentVersion(runId),
    ]);
    const commits = await readCommits(this.context, runId, items);
    for (const commit of commits) this.learn(runId, { boundary: commit.head.end as number });
    const events = commits.flatMap((commit) => commit.events);
    const [first] = events;
    if (first?.type === "workflow_started") this.learn(runId, { child: first.parent !== undefined });
    const last = commits[commits.length - 1];
    // A crash between a commit and its document update: bring the document up to the log now (and
    // fail this read if that fails, so that the activation is delivered again until it holds).
    if (last && (documentVersion ?? 0) < (last.head.end as number)) await this.repairDocument(runId, last);
    return events;
  }

  async commit(
    runId: string,
    expectedVersion: number,
    events: WorkflowEvent[],
    patch: RunPatch,
  ): Promise<void> {
    assertRunId(runId);
    const valid = events.map((event, index) => {
      const parsed = parseEvent(
        event,
        `run ${runId} (commit at version ${expectedVersion}, event ${index + 1})`,
      );
      if (parsed.seq !== expectedVersion + index + 1 || parsed.runId !== runId) {
        throw new InvalidEventError(
          `Event ${index + 1} of a commit to run ${runId} at version ${expectedVersion} has runId ${parsed.runId} and seq ${parsed.seq}; expected ${runId} and ${expectedVersion + index + 1}. This is a bug in the caller.`,
        );
      }
      return parsed;
    });
    if (!(await this.isBoundary(runId, expectedVersion)))
      throw new VersionConflictError(runId, expectedVersion);
    const newVersion = expectedVersion + valid.length;
    if (valid.length > 0) {
      const items = await commitItems(this.context, runId, expectedVersion + 1, valid, {
        status: patch.status,
        updatedAt: patch.updatedAt,
      });
      try {
        if (items.length === 1) {
          await this.documents.send(
            new PutCommand({
              TableName: this.tableName,
              Item: items[0],
              ConditionExpression: "attribute_not_exists(sk)",
            }),
          );
        } else {
          await this.documents.send(
            new TransactWriteCommand({
              TransactItems: items.map((item) => ({
                Put: {
                  TableName: this.tableName,
                  Item: item,
                  ConditionExpression: "attribute_not_exists(sk)",
                },
              })),
              ClientRequestToken: transactionToken(
                "commit",
                runId,
                expectedVersion,
                items[0]?.events as string,
              ),
            }),
          );
        }
      } catch (error) {
        if (
          error instanceof ConditionalCheckFailedException ||
          error instanceof TransactionCanceledException
        ) {
          throw new VersionConflictError(runId, expectedVersion);
        }
        throw error;
      }
      this.learn(runId, { boundary: newVersion });
    }
    await this.updateDocument(runId, newVersion, expectedVersion + 1, patch, valid);
  }

  async putOutcome(outcome: StepOutcome): Promise<boolean> {
    assertRunId(outcome.runId);
    const item = await outcomeItem(this.context, outcome);
    assertItemFits(item, `The outcome of step ${outcome.stepId} (attempt ${outcome.attempt})`);
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: "attribute_not_exists(sk)",
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async getOutcome(runId: string, stepId: string, attempt: number): Promise<StepOutcome | undefined> {
    assertRunId(runId);
    const { Item: item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: runPk(runId), sk: outcomeSk(stepId, attempt) },
        ConsistentRead: true,
      }),
    );
    return item ? outcomeOf(this.context, item) : undefined;
  }

  async listOutcomes(runId: string): Promise<StepOutcome[]> {
    assertRunId(runId);
    const items = await this.queryAll({
      TableName: this.tableName,
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
      ExpressionAttributeValues: { ":pk": runPk(runId), ":prefix": OUTCOME_PREFIX },
      ConsistentRead: true,
    });
    const outcomes = await Promise.all(items.map((item) => outcomeOf(this.context, item)));
    // Stable sort: equal timestamps keep the key order (step id, then attempt).
    return outcomes.sort((a, b) =>
      a.recordedAt === b.recordedAt ? 0 : a.recordedAt < b.recordedAt ? -1 : 1,
    );
  }

  /**
   * For the sweeper: runs whose due time has passed (a sleep that should have woken them, a finished
   * child whose parent must have been told), and pending or running runs unchanged since `staleBefore`.
   */
  async findRunsToSweep(options: {
    now: number;
    staleBefore: number;
    limit: number;
  }): Promise<{ due: RunRecord[]; stale: RunRecord[] }> {
    const stale = new Date(options.staleBefore).toISOString();
    const [due, pending, running] = await Promise.all([
      dueDocuments(this.context, options.now, options.limit),
      staleDocuments(this.context, "pending", stale, options.limit),
      staleDocuments(this.context, "running", stale, options.limit),
    ]);
    const records = (items: Item[]) => Promise.all(items.map((item) => toRecord(this.context, item)));
    return { due: await records(due), stale: await records([...pending, ...running]) };
  }

  /** Takes a finished child run out of the sweeper's due index once its parent has been told. */
  async clearDue(runId: string): Promise<void> {
    await this.documents
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: runPk(runId), sk: RUN_SK },
          UpdateExpression: "REMOVE duePk, dueSk",
          ConditionExpression: "attribute_exists(pk)",
        }),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      });
  }

  /**
   * Deletes every item of an expired run (its commits, outcomes and, if it still names the run, its
   * idempotency key): the reaper, once DynamoDB's TTL has removed the run's document. Returns how many.
   */
  async purgeRun(runId: string, idempotencyKey?: string): Promise<number> {
    assertRunId(runId);
    const keys = await this.queryAll({
      TableName: this.tableName,
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": runPk(runId) },
      ProjectionExpression: "pk, sk",
    });
    for (let start = 0; start < keys.length; start += 25) {
      let requests = keys.slice(start, start + 25).map((key) => ({ DeleteRequest: { Key: key } }));
      for (let round = 0; requests.length > 0; round += 1) {
        const result = await this.documents.send(
          new BatchWriteCommand({ RequestItems: { [this.tableName]: requests } }),
        );
        requests = (result.UnprocessedItems?.[this.tableName] ?? []) as typeof requests;
        if (requests.length > 0) await pause(Math.min(1000, 20 * 2 ** round));
      }
    }
    if (idempotencyKey !== undefined) {
      await this.documents
        .send(
          new DeleteCommand({
            TableName: this.tableName,
            Key: { pk: idemPk(idempotencyKey), sk: IDEM_SK },
            ConditionExpression: "runId = :runId",
            ExpressionAttributeValues: { ":runId": runId },
          }),
        )
        .catch((error: unknown) => {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        });
    }
    this.facts.delete(runId);
    return keys.length;
  }

  async close(): Promise<void> {
    this.facts.clear();
    if (this.ownsClient) this.client.destroy();
  }

  private async getDocument(runId: string): Promise<Item | undefined> {
    const { Item: item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: runPk(runId), sk: RUN_SK },
        ConsistentRead: true,
      }),
    );
    return item;
  }

  /** The run that holds an idempotency key, or undefined (and the key freed) when that run expired. */
  private async runHoldingKey(key: string): Promise<RunRecord | undefined> {
    const { Item: holder } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: idemPk(key), sk: IDEM_SK },
        ConsistentRead: true,
      }),
    );
    if (!holder) return undefined;
    const run = await this.getRun(holder.runId as string);
    if (run) return run;
    // The key's run was deleted by TTL: free the key (only if it still names that run).
    await this.documents
      .send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: idemPk(key), sk: IDEM_SK },
          ConditionExpression: "runId = :runId",
          ExpressionAttributeValues: { ":runId": holder.runId },
        }),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      });
    return undefined;
  }

  /**
   * True when a commit ended at `version`, so that `COMMIT#<version + 1>` is where the next commit
   * must go: then the conditional put alone decides who wins. Known boundaries need no read.
   */
  private async isBoundary(runId: string, version: number): Promise<boolean> {
    if (this.facts.get(runId)?.boundaries.has(version)) return true;
    const { Item: document } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: runPk(runId), sk: RUN_SK },
        ConsistentRead: true,
        ProjectionExpression: "version",
      }),
    );
    if (!document) return false;
    if (document.version === version) {
      this.learn(runId, { boundary: version, documentVersion: version });
      return true;
    }
    // The document may lag the log after a crash: ask the commit that holds `version`.
    const { Items: items = [] } = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: "pk = :pk AND sk BETWEEN :first AND :upTo",
        ExpressionAttributeValues: { ":pk": runPk(runId), ":first": commitSk(1), ":upTo": commitSk(version) },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
        ProjectionExpression: "#end",
        ExpressionAttributeNames: { "#end": "end" },
      }),
    );
    const ended = items[0]?.end === version;
    if (ended) this.learn(runId, { boundary: version });
    return ended;
  }

  /** Brings the run document up to a commit it missed (a crash between the commit and the update). */
  private async repairDocument(runId: string, last: StoredCommit): Promise<void> {
    const { head, events } = last;
    // Items written before commits kept their status beside the events held it in `patch`.
    const legacy = typeof head.patch === "string" ? (JSON.parse(head.patch) as Partial<RunPatch>) : {};
    const terminal = events.findLast(
      (event) => event.type === "workflow_completed" || event.type === "workflow_failed",
    );
    const patch: RunPatch = {
      status: (head.status ?? legacy.status) as RunPatch["status"],
      updatedAt: (head.updatedAt ?? legacy.updatedAt) as string,
      ...(terminal?.type === "workflow_completed" ? { result: terminal.result } : {}),
      ...(terminal?.type === "workflow_failed" ? { error: terminal.error } : {}),
    };
    const firstSeq = (head.end as number) - events.length + 1;
    await this.updateDocument(runId, head.end as number, firstSeq, patch, events);
  }

  /** The run document version this process knows, reading it when unknown. */
  private async knownDocumentVersion(runId: string): Promise<number | undefined> {
    const known = this.facts.get(runId)?.documentVersion;
    if (known !== undefined) return known;
    const { Item: item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: runPk(runId), sk: RUN_SK },
        ConsistentRead: true,
        ProjectionExpression: "version",
      }),
    );
    return item?.version as number | undefined;
  }

  private async updateDocument(
    runId: string,
    version: number,
    firstSeq: number,
    patch: RunPatch,
    events: readonly WorkflowEvent[],
  ): Promise<void> {
    const child = FINISHED_STATUSES.has(patch.status) ? await this.isChild(runId) : false;
    const finishedAt = Date.parse(patch.updatedAt) || Date.now();
    const update = documentUpdate({
      runId,
      version,
      firstSeq,
      patch,
      due: dueAt(patch, events, child),
      expiresAt: Math.floor(finishedAt / 1000) + this.ttlSeconds,
    });
    try {
      await this.documents.send(
        new UpdateCommand({ TableName: this.tableName, Key: { pk: runPk(runId), sk: RUN_SK }, ...update }),
      );
      this.learn(runId, { documentVersion: version });
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** True when the run is a child run (known from its first event, else read from its document). */
  private async isChild(runId: string): Promise<boolean> {
    const known = this.facts.get(runId)?.child;
    if (known !== undefined) return known;
    const { Item: item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: runPk(runId), sk: RUN_SK },
        ConsistentRead: true,
        ProjectionExpression: "parentRunId",
      }),
    );
    return item?.parentRunId !== undefined;
  }

  private async queryAll(input: QueryCommandInput): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  private learn(runId: string, fact: { boundary?: number; documentVersion?: number; child?: boolean }): void {
    let facts = this.facts.get(runId);
    if (!facts) {
      facts = { boundaries: new Set() };
      this.facts.set(runId, facts);
    }
    if (fact.boundary !== undefined) facts.boundaries.add(fact.boundary);
    if (fact.documentVersion !== undefined)
      facts.documentVersion = Math.max(facts.documentVersion ?? 0, fact.documentVersion);
    if (fact.child !== undefined) facts.child = fact.child;
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
