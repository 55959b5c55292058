import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { ConfigurationError, InvalidEventError, VersionConflictError } from "../../core/errors.ts";
import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import { MAX_PAYLOAD_BYTES } from "../../core/serialization.ts";
import type { RunTags } from "../../core/tags.ts";
import {
  type CommitResult,
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
import { isBoundary, knownDocumentVersion } from "./commit-boundary.ts";
import { commitItems, type Item, readCommits, type StoredCommit, transactionToken } from "./commit-items.ts";
import { freeKey, holderOf, keyItem } from "./idempotency-keys.ts";
import { assertItemFits } from "./item-size.ts";
import { COMMIT_PREFIX, OUTCOME_PREFIX, outcomeSk, RUN_SK, runPk } from "./keys.ts";
import { S3_MAX_PAYLOAD_BYTES } from "./limits.ts";
import { outcomeItem, outcomeOf } from "./outcome-items.ts";
import { deleteItems, getDocument, pause, queryAll, unlessConditionFailed } from "./queries.ts";
import { documentUpdate, dueAt, newRunDocument, tagItems, toRecord } from "./run-document.ts";
import { RunFacts } from "./run-facts.ts";
import { dueDocuments, staleDocuments } from "./run-listing.ts";
import { S3Payloads } from "./s3-payloads.ts";
import type { StoreContext } from "./store-context.ts";

/** Options of {@link DynamoDBStorage} and {@link DynamoDBEngineStore}. */
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
 * This class is what the engine and the Lambda handlers need: every `EventStore` operation but listing
 * runs, whose code (about 2 KB) stays out of the handlers' bundle. `DynamoDBStorage` adds the listing.
 *
 * @example
 * import { DynamoDBEngineStore } from "tsworkflow/aws";
 * const store = new DynamoDBEngineStore({ tableName: process.env.TSWORKFLOW_TABLE_NAME as string });
 */
export class DynamoDBEngineStore implements EventStore {
  readonly limits: StoreLimits;
  private readonly client: DynamoDBClient;
  private readonly ownsClient: boolean;
  protected readonly context: StoreContext;
  private readonly ttlSeconds: number;
  private readonly facts: RunFacts;
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
        this.defaultReader ??= new S3Payloads({ clientConfig: { region, credentials } });
        return this.defaultReader;
      },
    };
    this.limits = { maxPayloadBytes: payloads?.offloads ? S3_MAX_PAYLOAD_BYTES : MAX_PAYLOAD_BYTES };
    this.ttlSeconds = Math.round((options.ttlDays ?? 30) * DAY_SECONDS);
    this.facts = new RunFacts(options.cacheSize ?? 10_000);
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
      ...(key === undefined ? [] : [keyItem(key, run.runId, run.createdAt)]),
      document,
      ...commit,
      ...tagItems(run.runId, run.createdAt, run.tags),
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
        this.facts.learn(run.runId, { boundary: 1, documentVersion: 1, child: parent !== undefined });
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
    const item = await getDocument(this.context, runId);
    if (!item) return undefined;
    this.facts.learn(runId, { documentVersion: item.version as number, boundary: item.version as number });
    return toRecord(this.context, item);
  }

  /**
   * Listing runs is `DynamoDBStorage`'s (the client's and the CLI's store).
   * @throws ConfigurationError always
   */
  listRuns(_query?: RunQuery): Promise<RunPage> {
    return Promise.reject(
      new ConfigurationError(
        "This store (the Lambda handlers' DynamoDBEngineStore) does not list runs: list them with createClient().listRuns() or a DynamoDBStorage from tsworkflow/aws.",
      ),
    );
  }

  async getEvents(runId: string): Promise<WorkflowEvent[]> {
    assertRunId(runId);
    const [items, documentVersion] = await Promise.all([
      queryAll(this.context, {
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues: { ":pk": runPk(runId), ":prefix": COMMIT_PREFIX },
        ConsistentRead: true,
      }),
      knownDocumentVersion(this.context, this.facts, runId),
    ]);
    const commits = await readCommits(this.context, runId, items);
    for (const commit of commits) this.facts.learn(runId, { boundary: commit.head.end as number });
    const events = commits.flatMap((commit) => commit.events);
    const [first] = events;
    if (first?.type === "workflow_started") this.facts.learn(runId, { child: first.parent !== undefined });
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
  ): Promise<CommitResult> {
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
    if (!(await isBoundary(this.context, this.facts, runId, expectedVersion)))
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
      this.facts.learn(runId, { boundary: newVersion });
    }
    await this.updateDocument(runId, newVersion, expectedVersion + 1, patch, valid);
    if (patch.tags) await this.writeTagItems(runId, patch.tags);
    // Whether outcomes wait would take a query: the engine lists them when it needs to.
    return {};
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
    const items = await queryAll(this.context, {
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
      .catch(unlessConditionFailed);
  }

  /**
   * Deletes every item of an expired run (its commits, outcomes and, if it still names the run, its
   * idempotency key): the reaper, once DynamoDB's TTL has removed the run's document. Returns how many.
   */
  async purgeRun(runId: string, idempotencyKey?: string): Promise<number> {
    assertRunId(runId);
    const keys = await queryAll(this.context, {
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": runPk(runId) },
      ProjectionExpression: "pk, sk",
    });
    await deleteItems(this.context, keys);
    if (idempotencyKey !== undefined) await freeKey(this.context, idempotencyKey, runId);
    this.facts.forget(runId);
    return keys.length;
  }

  async close(): Promise<void> {
    this.facts.clear();
    if (this.ownsClient) this.client.destroy();
  }

  /** The run that holds an idempotency key, or undefined (and the key freed) when that run expired. */
  private async runHoldingKey(key: string): Promise<RunRecord | undefined> {
    const holder = await holderOf(this.context, key);
    if (holder === undefined) return undefined;
    const run = await this.getRun(holder);
    if (!run) await freeKey(this.context, key, holder);
    return run;
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

  /**
   * Lists the run under its tags (puts are idempotent; an item of a value replaced since is left, and
   * filtered out on listing by the document's tags). One `PutItem` each: a run carries at most 16 tags.
   */
  private async writeTagItems(runId: string, tags: RunTags): Promise<void> {
    const document = await getDocument(this.context, runId, "createdAt");
    if (!document) return;
    await Promise.all(
      tagItems(runId, document.createdAt as string, tags).map((Item) =>
        this.documents.send(new PutCommand({ TableName: this.tableName, Item })),
      ),
    );
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
      this.facts.learn(runId, { documentVersion: version });
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** True when the run is a child run (known from its first event, else read from its document). */
  private async isChild(runId: string): Promise<boolean> {
    const known = this.facts.get(runId)?.child;
    if (known !== undefined) return known;
    return (await getDocument(this.context, runId, "parentRunId"))?.parentRunId !== undefined;
  }
}
