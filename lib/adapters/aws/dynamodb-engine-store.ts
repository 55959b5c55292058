import { ConfigurationError, VersionConflictError } from "../../core/errors.ts";
import type { WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import { LruMap } from "../../core/lru-map.ts";
import { MAX_PAYLOAD_BYTES } from "../../core/serialization.ts";
import type {
  CommitResult,
  CreateRunResult,
  EventStore,
  NewRun,
  RunPage,
  RunPatch,
  RunQuery,
  RunRecord,
  StepOutcome,
  StoreLimits,
} from "../../ports/event-store.ts";
import { isBoundary, knownDocumentVersion } from "./commit-boundary.ts";
import { commitItems, readCommits } from "./commit-items.ts";
import { putCommit } from "./commit-write.ts";
import { DOCUMENT_LAG_MS } from "./document-lag.ts";
import { readRun, repairDocument, updateDocument, writeTagItems } from "./document-sync.ts";
import { DynamoDBClient, DynamoDBDocumentClient } from "./dynamodb-sdk.ts";
import { freeKey } from "./idempotency-keys.ts";
import { COMMIT_END, commitSk, RUN_SK, runPk } from "./keys.ts";
import { S3_MAX_PAYLOAD_BYTES } from "./limits.ts";
import { putSegment, readSegments, SEGMENT_EVENTS } from "./log-segment.ts";
import { getOutcomeItem, listOutcomeItems, putOutcomeItem } from "./outcome-items.ts";
import { clearDue, deleteItems, queryAll } from "./queries.ts";
import { createRunItems } from "./run-creation.ts";
import { keepsRunning, RunFacts } from "./run-facts.ts";
import { runsToSweep } from "./run-listing.ts";
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
  /**
   * How many runs' logs the store keeps, so that reading a run's log again reads only the commits after
   * what it holds (on Lambda: a run that comes back to an instance that held an older copy of it). Each read
   * returns a new array of the kept event objects: treat the events as read-only (`createClient().getEvents`
   * returns deep copies).
   * 0 keeps none.
   * @default 64
   * @example
   * const store = new DynamoDBEngineStore({ tableName: "tsworkflow", logCacheSize: 0 });
   */
  logCacheSize?: number;
}

const DAY_SECONDS = 86_400;

/**
 * The runtime's store as the DynamoDB store that `job` (the sweeper, the reaper) needs.
 * @throws ConfigurationError for another store
 */
export function dynamoDBStoreFor(job: string, store: EventStore): DynamoDBEngineStore {
  if (store instanceof DynamoDBEngineStore) return store;
  throw new ConfigurationError(`${job}: give it the runtime's DynamoDB store.`);
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
  private readonly logs: LruMap<WorkflowEvent[]> | undefined;
  private defaultReader: S3Payloads | undefined;
  /** Where the sweeper's stale scan of each index partition goes on from (see `runsToSweep`). */
  private readonly staleScanFrom = new Map<string, string>();

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
    const logCacheSize = options.logCacheSize ?? 64;
    if (logCacheSize > 0) this.logs = new LruMap(logCacheSize);
  }

  async createRun(newRun: NewRun): Promise<CreateRunResult> {
    assertRunId(newRun.run.runId);
    return createRunItems(this.context, this.facts, newRun);
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    assertRunId(runId);
    return readRun(this.context, this.facts, runId);
  }

  /**
   * Listing runs is `DynamoDBStorage`'s (the client's and the CLI's store).
   * @throws ConfigurationError always
   */
  listRuns(_query?: RunQuery): Promise<RunPage> {
    return Promise.reject(
      new ConfigurationError("List runs with createClient().listRuns() or a DynamoDBStorage."),
    );
  }

  async getEvents(runId: string): Promise<WorkflowEvent[]> {
    assertRunId(runId);
    const version = knownDocumentVersion(this.context, this.facts, runId);
    // Commits never change: a log read or written before is the start of the log, and only the commits
    // after it are read (a run back on an instance that held an older copy of it). An instance new to
    // a long run starts from its segments (see log-segment.ts).
    const known =
      this.logs?.get(runId) ??
      (((await version) ?? 0) >= SEGMENT_EVENTS ? await readSegments(this.context, runId) : []);
    const read = (ConsistentRead: boolean) =>
      queryAll(this.context, {
        KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
        ExpressionAttributeValues: {
          ":pk": runPk(runId),
          ":from": commitSk(known.length + 1),
          ":to": COMMIT_END,
        },
        ConsistentRead,
      }).then((items) => readCommits(this.context, runId, items, known.length));
    // A running run's document may be behind its log (see `commit`): its commits are read consistently.
    // Another run's document is behind only for a moment (an update under way, a crash): its commits are
    // read eventually consistent (half the units), and again consistently when they end before it.
    const document = this.facts.get(runId)?.document;
    const consistent = (document?.status ?? "running") === "running";
    const [early, documentVersion] = await Promise.all([read(consistent), version]);
    const commits =
      consistent ||
      ((early[early.length - 1]?.head.end as number | undefined) ?? known.length) >= (documentVersion ?? 0)
        ? early
        : await read(true);
    for (const { head, events } of commits) {
      const end = head.end as number;
      this.facts.learn(runId, { boundary: end });
      // A commit that kept a running run running is only not in its document yet (see `commit`): the
      // document still says running as of its end.
      if (keepsRunning(document, end - events.length, head.status)) document.through = end;
    }
    const events = [...known, ...commits.flatMap((commit) => commit.events)];
    const [first] = events;
    if (first?.type === "workflow_started") this.facts.learn(runId, { child: first.parent !== undefined });
    const last = commits[commits.length - 1];
    // Another commit missing from the document is a crash between a commit and its document update: bring
    // the document up to the log now (and fail this read if that fails, so that the activation is
    // delivered again until it holds).
    if (last && (documentVersion ?? 0) < (last.head.end as number) && document?.through !== last.head.end)
      await repairDocument(this.context, this.facts, this.ttlSeconds, runId, last);
    this.logs?.set(runId, events);
    // A new array each time: a caller that sorts or extends its copy changes nothing kept.
    return [...events];
  }

  async commit(
    runId: string,
    expectedVersion: number,
    events: readonly WorkflowEvent[],
    patch: RunPatch,
  ): Promise<CommitResult> {
    assertRunId(runId);
    // The engine built these events: they are checked when read back (see `readCommits`), not here.
    if (!(await isBoundary(this.context, this.facts, runId, expectedVersion)))
      throw new VersionConflictError(runId, expectedVersion);
    const version = expectedVersion + events.length;
    if (events.length > 0) {
      const meta = { status: patch.status, updatedAt: patch.updatedAt };
      const items = await commitItems(this.context, runId, expectedVersion + 1, events, meta);
      await putCommit(this.context, runId, expectedVersion, items);
      this.facts.learn(runId, { boundary: version });
    }
    const document = this.facts.get(runId)?.document;
    const segmentDue = Math.floor(version / SEGMENT_EVENTS) > Math.floor(expectedVersion / SEGMENT_EVENTS);
    // A commit that leaves a running run running (a step done, the next one started) changes nothing in
    // its document but `version` and `updatedAt`: while this process knows the document says running as of
    // this commit's base, and says so since less than `DOCUMENT_LAG_MS`, it is left as it is. A running
    // run has a step out, whose outcome brings an activation that reads the log; the sweeper sees the run
    // heard of at most that long before its last commit. The commit that passes another 100 events updates
    // it, so that an instance new to the run knows from the document to read the segments.
    if (
      keepsRunning(document, expectedVersion, patch.status) &&
      !patch.tags &&
      !segmentDue &&
      Date.parse(patch.updatedAt) - document.at < DOCUMENT_LAG_MS
    )
      document.through = version;
    else
      await updateDocument(
        this.context,
        this.facts,
        this.ttlSeconds,
        runId,
        version,
        expectedVersion + 1,
        patch,
        events,
      );
    if (patch.tags) await writeTagItems(this.context, runId, patch.tags);
    const known = this.logs?.get(runId);
    if (known?.length === expectedVersion) {
      const log = [...known, ...events];
      this.logs?.set(runId, log);
      if (segmentDue) await putSegment(this.context, runId, log);
    }
    // Whether outcomes wait would take a query: the engine lists them when it needs to.
    return {};
  }

  async putOutcome(outcome: StepOutcome): Promise<boolean> {
    assertRunId(outcome.runId);
    return putOutcomeItem(this.context, outcome);
  }

  async getOutcome(
    runId: string,
    stepId: string,
    attempt: number,
    issueSeq?: number,
  ): Promise<StepOutcome | undefined> {
    assertRunId(runId);
    return getOutcomeItem(this.context, runId, stepId, attempt, issueSeq);
  }

  /**
   * With `fromSeq`, the attempts issued before it are not read (see `outcomeSk`): reads stay flat. With
   * `settled` (a timer's activation), the query is eventually consistent: 0.5 RRU instead of 1.
   */
  async listOutcomes(runId: string, fromSeq?: number, settled = false): Promise<StepOutcome[]> {
    assertRunId(runId);
    return listOutcomeItems(this.context, runId, fromSeq, !settled);
  }

  /**
   * For the sweeper: runs whose due time has passed (a sleep that should have woken them, a finished
   * child whose parent must have been told), and pending or running runs unchanged since `staleBefore`.
   */
  findRunsToSweep(options: { now: number; staleBefore: number; limit: number }): Promise<{
    due: RunRecord[];
    stale: RunRecord[];
  }> {
    return runsToSweep(this.context, options, this.staleScanFrom);
  }

  /**
   * Takes a finished run out of the sweeper's due index (a child once its parent has been told), with the
   * outcomes from outside that reached it after its last activation (see `listOutcomeItems`).
   */
  async clearDue(runId: string): Promise<void> {
    await clearDue(this.context, { pk: runPk(runId), sk: RUN_SK });
    await listOutcomeItems(this.context, runId);
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
}
