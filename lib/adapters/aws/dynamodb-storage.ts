import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import {
  InvalidEventError,
  PayloadTooLargeError,
  type SerializedError,
  VersionConflictError,
} from "../../core/errors.ts";
import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import {
  type CreateRunResult,
  type EventStore,
  FINISHED_STATUSES,
  type NewRun,
  RUN_STATUSES,
  type RunPage,
  type RunPatch,
  type RunQuery,
  type RunRecord,
  type RunStatus,
  type StepOutcome,
} from "../../ports/event-store.ts";
import {
  byteLength,
  COMMIT_LIMIT_BYTES,
  COMMIT_PART_BYTES,
  OUTCOME_LIMIT_BYTES,
  RUN_DOCUMENT_PAYLOAD_BYTES,
  TRANSACTION_MAX_ITEMS,
} from "./limits.ts";
import { TABLE_SCHEMA } from "./table-schema.ts";

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
   * Days a finished run is kept before DynamoDB's TTL deletes it. Items of runs with a `maxDuration`
   * also expire this long after the run's deadline.
   * @default 30
   */
  ttlDays?: number;
  /**
   * How many runs' commit boundaries the store remembers, to commit without a read.
   * @default 10000
   */
  cacheSize?: number;
}

type Item = Record<string, unknown>;

const RUN_SK = "RUN";
const IDEM_SK = "IDEM";
const COMMIT_PREFIX = "COMMIT#";
const OUTCOME_PREFIX = "OUT#";
const DAY_SECONDS = 86_400;
const MAX_CREATE_ATTEMPTS = 30;

const runPk = (runId: string) => `RUN#${runId}`;
const commitSk = (firstSeq: number) => `${COMMIT_PREFIX}${String(firstSeq).padStart(10, "0")}`;
const partSk = (firstSeq: number, part: number) => `${commitSk(firstSeq)}#P${String(part).padStart(2, "0")}`;
const outcomeSk = (stepId: string, attempt: number) =>
  `${OUTCOME_PREFIX}${stepId}#${String(attempt).padStart(6, "0")}`;
const idemPk = (key: string) => `IDEM#${key}`;
const statusKey = (status: RunStatus) => `STATUS#${status}`;
const workflowKey = (name: string) => `WF#${name}`;
const gsiSortKey = (createdAt: string, runId: string) => `${createdAt}#${runId}`;

/** What the store knows about a run without asking DynamoDB again. */
interface RunFacts {
  /** Versions at which a commit ended: committing there needs no read (see `commit`). */
  boundaries: Set<number>;
  /** The highest version the run document is known to hold. */
  documentVersion?: number;
  /** Epoch ms of the run's `maxDuration` deadline; null when it has none. */
  deadline?: number | null;
}

/**
 * The DynamoDB event store: one table, one item per commit, no transaction on the hot path.
 *
 * A commit is one conditional `PutItem` of `sk = COMMIT#<first seq>` (`attribute_not_exists`): two
 * writers at the same version cannot both succeed. A writer with a stale version either collides with
 * the commit that starts where its version ends, or (when its version is not where a commit ended)
 * fails the boundary check, which needs no read when this process has seen the run's log. The run
 * document is updated right after the commit (monotonic on `version`) and repaired on the next read
 * of the log if a crash fell in between. A commit larger than one item is split into parts written in
 * one transaction, so it is still all or nothing.
 *
 * @example
 * import { DynamoDBStorage } from "tsworkflow/aws";
 * const store = new DynamoDBStorage({ tableName: process.env.TSWORKFLOW_TABLE_NAME as string });
 */
export class DynamoDBStorage implements EventStore {
  private readonly client: DynamoDBClient;
  private readonly ownsClient: boolean;
  private readonly documents: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly ttlSeconds: number;
  private readonly cacheSize: number;
  private readonly facts = new Map<string, RunFacts>();

  constructor(options: DynamoDBStorageOptions) {
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new DynamoDBClient({});
    this.documents = DynamoDBDocumentClient.from(this.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.tableName = options.tableName;
    this.ttlSeconds = Math.round((options.ttlDays ?? 30) * DAY_SECONDS);
    this.cacheSize = options.cacheSize ?? 10_000;
  }

  async createRun(newRun: NewRun): Promise<CreateRunResult> {
    const { run } = newRun;
    assertRunId(run.runId);
    const event = parseEvent(newRun.startedEvent, `run ${run.runId}`);
    const commitItems = this.commitItems(run.runId, 1, [event], {
      status: run.status,
      updatedAt: run.updatedAt,
    });
    const document = this.runDocument(run);
    const key = run.idempotencyKey;
    const puts: Item[] = [
      ...(key === undefined
        ? []
        : [{ pk: idemPk(key), sk: IDEM_SK, runId: run.runId, createdAt: run.createdAt }]),
      document,
      ...commitItems,
    ];
    const transactItems = puts.map((item) => ({
      Put: { TableName: this.tableName, Item: item, ConditionExpression: "attribute_not_exists(pk)" },
    }));

    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.documents.send(new TransactWriteCommand({ TransactItems: transactItems }));
        this.learn(run.runId, { boundary: 1, documentVersion: 1, deadline: deadlineOf(event) });
        return { created: true, run: structuredClone(run) };
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = (error.CancellationReasons ?? []).map((reason) => reason.Code ?? "None");
        const keyTaken = key !== undefined && reasons[0] === "ConditionalCheckFailed";
        const runTaken = reasons.slice(key === undefined ? 0 : 1).includes("ConditionalCheckFailed");
        if (runTaken && !keyTaken) throw new VersionConflictError(run.runId, 0);
        if (key !== undefined) {
          const existing = await this.runHoldingKey(key);
          if (existing) return { created: false, run: existing };
        }
        // Lost a race to a transaction that was itself cancelled, or the key's run expired: try again.
        if (attempt >= MAX_CREATE_ATTEMPTS) throw error;
        await pause(Math.min(200, 5 * attempt) + Math.random() * 20 * attempt);
      }
    }
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    assertRunId(runId);
    const { Item: item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: runPk(runId), sk: RUN_SK },
        ConsistentRead: true,
      }),
    );
    if (!item) return undefined;
    this.learn(runId, { documentVersion: item.version as number, boundary: item.version as number });
    return this.toRecord(item);
  }

  async listRuns(query: RunQuery = {}): Promise<RunPage> {
    const limit = query.limit ?? 100;
    if (limit <= 0) return { runs: [] };
    const keys: Item[] =
      query.workflowName !== undefined
        ? await this.queryIndex(
            TABLE_SCHEMA.byWorkflowIndex,
            workflowKey(query.workflowName),
            limit,
            query.status,
          )
        : query.status !== undefined
          ? await this.queryIndex(TABLE_SCHEMA.byStatusIndex, statusKey(query.status), limit, query.status)
          : await this.queryAllStatuses(limit);
    return { runs: keys.slice(0, limit).map((item) => item.record as RunRecord) };
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
    const events: WorkflowEvent[] = [];
    let pending: { head: Item; json: string } | undefined;
    const flush = () => {
      if (!pending) return;
      const values = JSON.parse(pending.json) as unknown[];
      values.forEach((value, index) => {
        events.push(
          parseEvent(value, `run ${runId} (event ${events.length + 1}, commit ${pending?.head.sk}#${index})`),
        );
      });
      this.learn(runId, { boundary: pending.head.end as number });
      pending = undefined;
    };
    for (const item of items) {
      if (item.part === undefined) {
        flush();
        pending = { head: item, json: item.events as string };
      } else if (pending) {
        pending.json += item.events as string;
      }
    }
    const last = pending?.head;
    flush();
    if (events.length > 0) this.learn(runId, { deadline: deadlineOf(events[0] as WorkflowEvent) });
    if (last && (documentVersion ?? 0) < (last.end as number)) await this.repairDocument(runId, last);
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
      const items = this.commitItems(runId, expectedVersion + 1, valid, patch);
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
    await this.updateDocument(runId, newVersion, patch);
  }

  async putOutcome(outcome: StepOutcome): Promise<boolean> {
    assertRunId(outcome.runId);
    let json = JSON.stringify(outcome);
    if (byteLength(json) > OUTCOME_LIMIT_BYTES)
      json = JSON.stringify(oversizedOutcome(outcome, byteLength(json)));
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: runPk(outcome.runId),
            sk: outcomeSk(outcome.stepId, outcome.attempt),
            outcome: json,
            recordedAt: outcome.recordedAt,
            ttl: this.expiry(Date.now()),
          },
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
    return item ? (JSON.parse(item.outcome as string) as StepOutcome) : undefined;
  }

  async listOutcomes(runId: string): Promise<StepOutcome[]> {
    assertRunId(runId);
    const items = await this.queryAll({
      TableName: this.tableName,
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
      ExpressionAttributeValues: { ":pk": runPk(runId), ":prefix": OUTCOME_PREFIX },
      ConsistentRead: true,
    });
    const outcomes = items.map((item) => JSON.parse(item.outcome as string) as StepOutcome);
    // Stable sort: equal timestamps keep the key order (step id, then attempt).
    return outcomes.sort((a, b) =>
      a.recordedAt === b.recordedAt ? 0 : a.recordedAt < b.recordedAt ? -1 : 1,
    );
  }

  async close(): Promise<void> {
    this.facts.clear();
    if (this.ownsClient) this.client.destroy();
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
  private async repairDocument(runId: string, head: Item): Promise<void> {
    const patch = JSON.parse(head.patch as string) as RunPatch;
    await this.updateDocument(runId, head.end as number, patch).catch(() => {
      // Best effort: the next commit or read repairs it again.
    });
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

  private async updateDocument(runId: string, version: number, patch: RunPatch): Promise<void> {
    const names: Record<string, string> = {
      "#status": "status",
      "#version": "version",
      "#ttl": TABLE_SCHEMA.ttlAttribute,
    };
    const values: Record<string, unknown> = {
      ":status": patch.status,
      ":updatedAt": patch.updatedAt,
      ":version": version,
      ":gsi1pk": statusKey(patch.status),
    };
    const sets = ["#status = :status", "updatedAt = :updatedAt", "#version = :version", "gsi1pk = :gsi1pk"];
    const removes: string[] = [];
    if (patch.result !== undefined) {
      const json = JSON.stringify(patch.result);
      if (byteLength(json) <= RUN_DOCUMENT_PAYLOAD_BYTES) {
        sets.push("#result = :result");
        values[":result"] = json;
        removes.push("resultInLog");
      } else {
        sets.push("resultInLog = :true");
        values[":true"] = true;
        removes.push("#result");
      }
      names["#result"] = "result";
    }
    if (patch.error !== undefined) {
      sets.push("#error = :error");
      names["#error"] = "error";
      values[":error"] = JSON.stringify(patch.error);
    }
    if (FINISHED_STATUSES.has(patch.status)) {
      sets.push("#ttl = :ttl");
      values[":ttl"] = this.expiry(Date.parse(patch.updatedAt) || Date.now());
    } else {
      removes.push("#ttl");
    }
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: runPk(runId), sk: RUN_SK },
          UpdateExpression: `SET ${sets.join(", ")}${removes.length > 0 ? ` REMOVE ${removes.join(", ")}` : ""}`,
          // Monotonic: a late update never rolls the document back.
          ConditionExpression: "attribute_exists(pk) AND #version <= :version",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      this.learn(runId, { documentVersion: version });
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** The items of one commit: one when it fits, else a head and parts (written in one transaction). */
  private commitItems(runId: string, firstSeq: number, events: WorkflowEvent[], patch: RunPatch): Item[] {
    const json = JSON.stringify(events);
    const bytes = byteLength(json);
    if (bytes > COMMIT_LIMIT_BYTES)
      throw new PayloadTooLargeError(
        `A commit of ${events.length} events to run ${runId}`,
        bytes,
        COMMIT_LIMIT_BYTES,
      );
    const end = firstSeq + events.length - 1;
    const deadline = this.facts.get(runId)?.deadline ?? deadlineOf(events[0] as WorkflowEvent);
    // Not the finish time: a failed run can be retried, and its log must outlive its document's TTL then.
    const ttl = typeof deadline === "number" ? this.expiry(deadline) : undefined;
    const chunks = splitUtf8(json, COMMIT_PART_BYTES);
    if (chunks.length > TRANSACTION_MAX_ITEMS) {
      throw new PayloadTooLargeError(
        `A commit of ${events.length} events to run ${runId}`,
        bytes,
        COMMIT_PART_BYTES * TRANSACTION_MAX_ITEMS,
      );
    }
    return chunks.map((chunk, index) =>
      index === 0
        ? {
            pk: runPk(runId),
            sk: commitSk(firstSeq),
            end,
            events: chunk,
            parts: chunks.length,
            patch: JSON.stringify(patch),
            ttl,
          }
        : { pk: runPk(runId), sk: partSk(firstSeq, index), part: index, events: chunk, ttl },
    );
  }

  private runDocument(run: RunRecord): Item {
    const input = JSON.stringify(run.input);
    const inputFits = byteLength(input) <= RUN_DOCUMENT_PAYLOAD_BYTES;
    const gsiSk = gsiSortKey(run.createdAt, run.runId);
    return {
      pk: runPk(run.runId),
      sk: RUN_SK,
      runId: run.runId,
      workflowName: run.workflowName,
      status: run.status,
      ...(inputFits ? { input } : { inputInLog: true }),
      ...(run.result === undefined ? {} : { result: JSON.stringify(run.result) }),
      ...(run.error === undefined ? {} : { error: JSON.stringify(run.error) }),
      createdAt: run.createdAt,
      updatedAt: run.updatedAt,
      version: run.version,
      ...(run.idempotencyKey === undefined ? {} : { idempotencyKey: run.idempotencyKey }),
      gsi1pk: statusKey(run.status),
      gsi2pk: workflowKey(run.workflowName),
      gsiSk,
    };
  }

  private async toRecord(item: Item): Promise<RunRecord> {
    const runId = item.runId as string;
    let input = item.input === undefined ? [] : (JSON.parse(item.input as string) as unknown[]);
    let result = item.result === undefined ? undefined : JSON.parse(item.result as string);
    if (item.inputInLog || item.resultInLog) {
      const events = await this.getEvents(runId);
      const started = events.find((event) => event.type === "workflow_started");
      const completed = events.find((event) => event.type === "workflow_completed");
      if (item.inputInLog && started) input = started.input;
      if (item.resultInLog && completed) result = completed.result;
    }
    return {
      runId,
      workflowName: item.workflowName as string,
      status: item.status as RunStatus,
      input,
      ...(result === undefined ? {} : { result }),
      ...(item.error === undefined ? {} : { error: JSON.parse(item.error as string) as SerializedError }),
      createdAt: item.createdAt as string,
      updatedAt: item.updatedAt as string,
      version: item.version as number,
      ...(item.idempotencyKey === undefined ? {} : { idempotencyKey: item.idempotencyKey as string }),
    };
  }

  /** Run documents from one index partition, newest first, checked against `status` (indexes lag). */
  private async queryIndex(
    index: { name: string; partitionKey: string },
    partition: string,
    limit: number,
    status: RunStatus | undefined,
  ): Promise<Item[]> {
    const found: Item[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: index.name,
          KeyConditionExpression: "#pk = :pk",
          ExpressionAttributeNames: { "#pk": index.partitionKey },
          ExpressionAttributeValues: { ":pk": partition },
          ScanIndexForward: false,
          Limit: Math.min(Math.max(limit - found.length, 1) + 10, 500),
          ExclusiveStartKey: startKey,
        }),
      );
      const records = await this.fetchRecords((page.Items ?? []).map((item) => item.pk as string));
      for (const record of records) {
        if (status !== undefined && record.status !== status) continue;
        found.push({ record, gsiSk: gsiSortKey(record.createdAt, record.runId) });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey && found.length < limit);
    return found;
  }

  /** Every status partition, merged newest first. */
  private async queryAllStatuses(limit: number): Promise<Item[]> {
    const perStatus = await Promise.all(
      RUN_STATUSES.map((status) =>
        this.queryIndex(TABLE_SCHEMA.byStatusIndex, statusKey(status), limit, status),
      ),
    );
    const byRunId = new Map<string, Item>();
    for (const item of perStatus.flat()) byRunId.set((item.record as RunRecord).runId, item);
    return [...byRunId.values()].sort((a, b) => ((a.gsiSk as string) < (b.gsiSk as string) ? 1 : -1));
  }

  /** Run documents by partition key, in the order given. */
  private async fetchRecords(pks: string[]): Promise<RunRecord[]> {
    const found = new Map<string, Item>();
    for (let start = 0; start < pks.length; start += 100) {
      let keys = pks.slice(start, start + 100).map((pk) => ({ pk, sk: RUN_SK }));
      for (let round = 0; keys.length > 0; round += 1) {
        const result = await this.documents.send(
          new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }),
        );
        for (const item of result.Responses?.[this.tableName] ?? []) found.set(item.pk as string, item);
        keys = (result.UnprocessedKeys?.[this.tableName]?.Keys ?? []) as typeof keys;
        if (keys.length > 0) await pause(Math.min(1000, 20 * 2 ** round));
      }
    }
    const records: RunRecord[] = [];
    for (const pk of pks) {
      const item = found.get(pk);
      if (item) records.push(await this.toRecord(item));
    }
    return records;
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

  private expiry(fromMs: number): number {
    return Math.floor(fromMs / 1000) + this.ttlSeconds;
  }

  private learn(
    runId: string,
    fact: { boundary?: number; documentVersion?: number; deadline?: number | null },
  ): void {
    let facts = this.facts.get(runId);
    if (facts) {
      this.facts.delete(runId);
    } else {
      facts = { boundaries: new Set() };
      if (this.facts.size >= this.cacheSize) {
        const oldest = this.facts.keys().next().value;
        if (oldest !== undefined) this.facts.delete(oldest);
      }
    }
    this.facts.set(runId, facts);
    if (fact.boundary !== undefined) facts.boundaries.add(fact.boundary);
    if (fact.documentVersion !== undefined)
      facts.documentVersion = Math.max(facts.documentVersion ?? 0, fact.documentVersion);
    if (fact.deadline !== undefined) facts.deadline = fact.deadline;
  }
}

function deadlineOf(event: WorkflowEvent): number | null | undefined {
  if (event.type !== "workflow_started") return undefined;
  return event.deadline ?? null;
}

/** A step result too large to store becomes a failure the engine does not retry. */
function oversizedOutcome(outcome: StepOutcome, bytes: number): StepOutcome {
  const error = new PayloadTooLargeError(
    `The ${outcome.ok ? "result" : "error"} of step ${outcome.stepId} (attempt ${outcome.attempt})`,
    bytes,
    OUTCOME_LIMIT_BYTES,
  );
  return {
    runId: outcome.runId,
    stepId: outcome.stepId,
    attempt: outcome.attempt,
    recordedAt: outcome.recordedAt,
    ok: false,
    error: { name: error.name, message: error.message, code: error.code },
  };
}

/** Splits a string into pieces of at most `maxBytes` UTF-8 bytes without cutting a character. */
function splitUtf8(text: string, maxBytes: number): string[] {
  if (byteLength(text) <= maxBytes) return [text];
  const pieces: string[] = [];
  let start = 0;
  while (start < text.length) {
    // Each UTF-16 unit is at most 3 UTF-8 bytes; a surrogate pair (2 units) is 4.
    let end = Math.min(text.length, start + Math.floor(maxBytes / 3));
    while (end < text.length && byteLength(text.slice(start, end + 1024)) <= maxBytes)
      end = Math.min(text.length, end + 1024);
    const code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xd800 && code <= 0xdbff) end -= 1;
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
