import { randomBytes } from "node:crypto";
import {
  DeleteItemCommand,
  QueryCommand,
  ScanCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOCUMENT_LAG_MS } from "../../lib/adapters/aws/document-lag.ts";
import { DynamoDBEngineStore } from "../../lib/adapters/aws/dynamodb-engine-store.ts";
import { DynamoDBStorage } from "../../lib/adapters/aws/dynamodb-storage.ts";
import { unpackEvents } from "../../lib/adapters/aws/event-codec.ts";
import { commitSk, shardOf } from "../../lib/adapters/aws/keys.ts";
import { SEGMENT_EVENTS } from "../../lib/adapters/aws/log-segment.ts";
import type { StoreContext } from "../../lib/adapters/aws/store-context.ts";
import { createTable } from "../../lib/adapters/aws/table-schema.ts";
import { ConfigurationError, PayloadTooLargeError, VersionConflictError } from "../../lib/core/errors.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import type { RunStatus } from "../../lib/ports/event-store.ts";
import { describeEventStoreContract, newRunFixture } from "../contract/event-store-contract.ts";
import { type DynamoDBLocal, folderDynamoDBLocal } from "./harness/dynamodb-local.ts";
import { loseReplies } from "./harness/lost-replies.ts";

const TABLE = "tsworkflow-contract";
let dynamo: DynamoDBLocal;

beforeAll(async () => {
  dynamo = await folderDynamoDBLocal();
  const client = dynamo.client();
  await createTable(client, TABLE);
  client.destroy();
});

afterAll(async () => {
  await dynamo?.stop();
});

describeEventStoreContract("DynamoDBStorage", {
  create: async () => new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() }),
});

const at = "2026-03-01T00:00:00.000Z";
const logEvent = (runId: string, seq: number, message: string): WorkflowEvent => ({
  runId,
  seq,
  timestamp: at,
  type: "log_info",
  message,
});

/** A store and a new run created through it. */
async function newStoredRun(): Promise<{ store: DynamoDBStorage; runId: string }> {
  const store = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
  const fixture = newRunFixture();
  await store.createRun(fixture);
  return { store, runId: fixture.run.runId };
}

/** Sets the run document's version by hand, as a crash between a commit and its document update leaves it. */
async function setDocumentVersion(runId: string, version: number): Promise<void> {
  await dynamo.client().send(
    new UpdateItemCommand({
      TableName: TABLE,
      Key: { pk: { S: `RUN#${runId}` }, sk: { S: "RUN" } },
      UpdateExpression: "SET version = :version",
      ExpressionAttributeValues: { ":version": { N: String(version) } },
    }),
  );
}

/** The raw items of a run whose sort key begins with `prefix`, in key order. */
async function rawItems(runId: string, prefix: string) {
  const { Items: items = [] } = await dynamo.client().send(
    new QueryCommand({
      TableName: TABLE,
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
      ExpressionAttributeValues: { ":pk": { S: `RUN#${runId}` }, ":prefix": { S: prefix } },
      ConsistentRead: true,
    }),
  );
  return items;
}

describe("DynamoDBStorage beyond the contract", () => {
  it("rejects a writer whose version falls inside an earlier commit, even in a fresh process", async () => {
    // Prepare
    const writer = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    const fixture = newRunFixture();
    const runId = fixture.run.runId;
    await writer.createRun(fixture);
    await writer.commit(runId, 1, [logEvent(runId, 2, "a"), logEvent(runId, 3, "b")], {
      status: "running",
      updatedAt: at,
    });
    const stranger = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    // Act
    const stale = stranger.commit(runId, 2, [logEvent(runId, 3, "c")], { status: "running", updatedAt: at });
    // Assess
    await expect(stale).rejects.toBeInstanceOf(VersionConflictError);
    expect(
      (await stranger.getEvents(runId)).map((e) => (e.type === "log_info" ? e.message : e.type)),
    ).toEqual(["workflow_started", "a", "b"]);
    await stranger.commit(runId, 3, [logEvent(runId, 4, "d")], { status: "running", updatedAt: at });
    expect((await writer.getRun(runId))?.version).toBe(4);
    await writer.close();
    await stranger.close();
  });

  it("splits a commit larger than one item, compressed, into parts and reads it back whole", async () => {
    // Prepare: random text does not compress below one item (350 KB); repeated text would.
    const { store, runId } = await newStoredRun();
    const big = `é🚀${randomBytes(450_000).toString("base64")}`;
    // Act
    await store.commit(runId, 1, [logEvent(runId, 2, big), logEvent(runId, 3, "small")], {
      status: "running",
      updatedAt: at,
    });
    // Assess
    const stored = await rawItems(runId, commitSk(2));
    expect(stored.map((item) => [item.sk?.S, item.z?.B !== undefined, item.events])).toEqual([
      [commitSk(2), true, undefined],
      [`${commitSk(2)}#P01`, true, undefined],
    ]);
    const fresh = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    const events = await fresh.getEvents(runId);
    expect(events).toHaveLength(3);
    expect(events[1]).toMatchObject({ seq: 2, message: big });
    expect(events[2]).toMatchObject({ seq: 3, message: "small" });
    await expect(
      fresh.commit(runId, 1, [logEvent(runId, 2, "late")], { status: "running", updatedAt: at }),
    ).rejects.toBeInstanceOf(VersionConflictError);
    // A document behind the log (a crash between a commit and its update): a store that knows nothing of
    // the run finds where the split commit ended from its parts too, and commits after it.
    await setDocumentVersion(runId, 1);
    const third = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    await third.commit(runId, 3, [logEvent(runId, 4, "after")], { status: "running", updatedAt: at });
    expect((await third.getEvents(runId)).map((event) => event.seq)).toEqual([1, 2, 3, 4]);
    await store.close();
    await fresh.close();
    await third.close();
  });

  it("writes the largest commit it takes without S3 as 12 parts in one transaction, and refuses a larger one", async () => {
    // Prepare: random base64 compresses to about 3/4, so these are about 4.0 MB and 4.2 MB compressed,
    // either side of COMMIT_LIMIT_BYTES (4 MB less 64 KB); 12 parts of 350 KB is all a commit can take.
    const { store, runId } = await newStoredRun();
    const largest = randomBytes(4_000_000).toString("base64");
    const tooLarge = randomBytes(4_200_000).toString("base64");
    // Act
    await store.commit(runId, 1, [logEvent(runId, 2, largest)], { status: "running", updatedAt: at });
    const refused = await store
      .commit(runId, 2, [logEvent(runId, 3, tooLarge)], { status: "running", updatedAt: at })
      .catch((error: unknown) => error);
    // Assess: the head says how many parts it has (one query page holds only the first few).
    expect((await rawItems(runId, commitSk(2)))[0]?.parts?.N).toBe("12");
    expect(refused).toBeInstanceOf(PayloadTooLargeError);
    expect((refused as Error).message).toContain("Set TSWORKFLOW_PAYLOAD_BUCKET");
    const fresh = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    expect((await fresh.getEvents(runId))[1]).toMatchObject({ seq: 2, message: largest });
    await store.close();
    await fresh.close();
  });

  it("stores a commit's events compressed, and still reads the plain JSON commits of earlier versions", async () => {
    // Prepare: a run whose second commit is written as versions before compression wrote it, in two parts.
    const { store, runId } = await newStoredRun();
    const json = JSON.stringify([logEvent(runId, 2, "é🚀 old"), logEvent(runId, 3, "older")]);
    const cut = json.indexOf("older");
    const head = { sk: { S: commitSk(2) }, end: { N: "3" }, status: { S: "running" }, parts: { N: "2" } };
    await dynamo.client().send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Put: {
              TableName: TABLE,
              Item: { pk: { S: `RUN#${runId}` }, ...head, events: { S: json.slice(0, cut) } },
            },
          },
          {
            Put: {
              TableName: TABLE,
              Item: {
                pk: { S: `RUN#${runId}` },
                sk: { S: `${commitSk(2)}#P01` },
                part: { N: "1" },
                events: { S: json.slice(cut) },
              },
            },
          },
        ],
      }),
    );
    await setDocumentVersion(runId, 3);
    // Act
    await store.commit(runId, 3, [logEvent(runId, 4, "new")], { status: "running", updatedAt: at });
    // Assess
    const stored = await rawItems(runId, commitSk(4));
    const written = stored[0]?.z?.B ?? new Uint8Array();
    expect(JSON.parse(unpackEvents(runId, written))).toEqual([logEvent(runId, 4, "new")]);
    expect(written.byteLength).toBeLessThan(JSON.stringify([logEvent(runId, 4, "new")]).length);
    expect(Object.keys(stored[0] ?? {}).sort()).toEqual(["end", "pk", "sk", "status", "updatedAt", "z"]);
    const fresh = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    expect((await fresh.getEvents(runId)).map((event) => event.type === "log_info" && event.message)).toEqual(
      [false, "é🚀 old", "older", "new"],
    );
    await store.close();
    await fresh.close();
  });

  it("repairs a run document that missed its last commit when the log is read", async () => {
    // Prepare
    const { store, runId } = await newStoredRun();
    const crashing = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    // A commit whose document update never happens, as when the process dies in between.
    const { documents } = (crashing as unknown as { context: StoreContext }).context;
    const send = documents.send.bind(documents) as (command: object) => Promise<unknown>;
    documents.send = ((command: object) =>
      command instanceof UpdateCommand ? Promise.resolve({}) : send(command)) as typeof documents.send;
    await crashing.commit(
      runId,
      1,
      [{ runId, seq: 2, timestamp: at, type: "workflow_completed", result: 42 }],
      {
        status: "completed",
        updatedAt: at,
        result: 42,
      },
    );
    expect((await store.getRun(runId))?.status).toBe("pending");
    // Act
    const reader = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    await reader.getEvents(runId);
    // Assess
    expect(await reader.getRun(runId)).toMatchObject({ status: "completed", result: 42, version: 2 });
    for (const s of [store, crashing, reader]) await s.close();
  });

  it("refuses an outcome over DynamoDB's item limit with PayloadTooLargeError and writes nothing", async () => {
    // Prepare: the engine keeps outcomes within the store's limit; this one comes from elsewhere.
    const store = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    const fixture = newRunFixture();
    await store.createRun(fixture);
    const outcome = {
      runId: fixture.run.runId,
      stepId: "big#0",
      attempt: 1,
      recordedAt: at,
      ok: true as const,
      result: "x".repeat(400 * 1024),
    };
    // Act
    const stored = store.putOutcome(outcome);
    // Assess
    await expect(stored).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(await store.getOutcome(fixture.run.runId, "big#0", 1)).toBeUndefined();
    await store.close();
  });

  it("reports a table that does not exist as a ConfigurationError that says how to create it", async () => {
    // Prepare
    const store = new DynamoDBStorage({ tableName: "tsworkflow-missing", client: dynamo.client() });
    // Act
    const read = store.getRun("run_missing_table");
    // Assess
    await expect(read).rejects.toBeInstanceOf(ConfigurationError);
    await expect(read).rejects.toThrow(/No DynamoDB table "tsworkflow-missing" here: .*createTable\(\)/);
    await store.close();
  });

  it("gives a TTL to the finished run's document only, from its finish, and takes it back on a retry", async () => {
    // Prepare: a run with a deadline and an event sent before anything waits for it.
    const client = dynamo.client();
    const store = new DynamoDBStorage({ tableName: TABLE, client, ttlDays: 7 });
    const fixture = newRunFixture();
    fixture.startedEvent = {
      ...fixture.startedEvent,
      ...{ deadline: Date.UTC(2026, 0, 2) },
    } as WorkflowEvent;
    const runId = fixture.run.runId;
    await store.createRun(fixture);
    await store.putOutcome({
      runId,
      stepId: "$signal:approval:1",
      attempt: 1,
      recordedAt: at,
      ok: true,
      result: 1,
    });
    const finishedAt = "2026-03-01T00:00:00.000Z";
    const items = async () => {
      const result = await client.send(
        new QueryCommand({
          TableName: TABLE,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": { S: `RUN#${runId}` } },
          ConsistentRead: true,
        }),
      );
      return Object.fromEntries((result.Items ?? []).map((item) => [item.sk?.S, item.ttl?.N]));
    };
    const live = await items();
    // Act
    await store.commit(
      runId,
      1,
      [
        {
          runId,
          seq: 2,
          timestamp: finishedAt,
          type: "workflow_failed",
          error: { name: "Error", message: "x" },
        },
      ],
      { status: "failed", updatedAt: finishedAt },
    );
    const failed = await items();
    await store.commit(runId, 2, [logEvent(runId, 3, "retrying")], {
      status: "running",
      updatedAt: finishedAt,
    });
    const retried = await items();
    // Assess: nothing of a live run expires; the document expires a week after the finish.
    expect(Object.values(live)).toEqual([undefined, undefined, undefined]);
    expect(failed).toEqual({
      RUN: String(Date.parse(finishedAt) / 1000 + 7 * 86_400),
      "COMMIT#0000000001": undefined,
      "COMMIT#0000000002": undefined,
      "OUT#$signal:approval:1#000001": undefined,
    });
    expect(Object.values(retried).every((ttl) => ttl === undefined)).toBe(true);
    await store.close();
  });

  it("keeps a workflow input too large for the run document in the log and still returns it", async () => {
    // Prepare
    const store = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    const input = ["y".repeat(320 * 1024)];
    const fixture = newRunFixture({ input });
    // Act
    await store.createRun(fixture);
    // Assess
    const run = await store.getRun(fixture.run.runId);
    expect(run?.input).toEqual(input);
    await store.close();
  });
});

describe("reading a run's log", () => {
  /**
   * A client whose eventually consistent queries of commit items leave out the newest `lag` of them, as a
   * replica behind the leader would; records the `ConsistentRead` of each such query.
   */
  function laggingReplica(lag: number) {
    const client = dynamo.client();
    const reads: boolean[] = [];
    const froms: string[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as {
          ConsistentRead?: boolean;
          ExpressionAttributeValues?: Record<string, string | { S?: string }>;
        };
        const result = await next(args);
        // Marshalled or not, depending on where the document client's marshalling sits.
        const from = input.ExpressionAttributeValues?.[":from"];
        const fromKey = String(typeof from === "string" ? from : from?.S);
        if (!fromKey.startsWith("COMMIT#")) return result;
        reads.push(input.ConsistentRead === true);
        froms.push(fromKey);
        const output = result.output as { Items?: unknown[] };
        if (!input.ConsistentRead && output.Items) output.Items = output.Items.slice(0, -lag || undefined);
        return result;
      },
      { step: "initialize", name: "laggingReplica" },
    );
    return { client, reads, froms };
  }

  /**
   * A run of three commits, written through one store, and a second store reading through
   * `laggingReplica(lag)`. The last commit leaves the run `status`.
   */
  async function runWithThreeCommits(lag: number, logCacheSize = 0, status: RunStatus = "running") {
    const writer = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    const fixture = newRunFixture();
    const runId = fixture.run.runId;
    await writer.createRun(fixture);
    await writer.commit(runId, 1, [logEvent(runId, 2, "a")], { status: "running", updatedAt: at });
    await writer.commit(runId, 2, [logEvent(runId, 3, "b")], { status, updatedAt: at });
    const { client, reads, froms } = laggingReplica(lag);
    const reader = new DynamoDBStorage({ tableName: TABLE, client, logCacheSize });
    return { writer, reader, runId, reads, froms };
  }

  // Each case: how far the replica lags, the status the last commit leaves, the document's version as an
  // activation reads it first (undefined: the log is read without the document), and the `ConsistentRead`
  // of each query of commits.
  it.each([
    [
      "reads a suspended run's commits eventually consistent (half the read units) when they reach its document's version",
      { lag: 0, status: "suspended" as const, documentVersion: 3, reads: [false] },
    ],
    [
      "reads a suspended run's commits again consistently when the eventually consistent read ends before its document",
      { lag: 1, status: "suspended" as const, documentVersion: 3, reads: [false, true] },
    ],
    [
      "reads the commits consistently when it does not know what the run document says",
      { lag: 1, status: "suspended" as const, documentVersion: undefined, reads: [true] },
    ],
    [
      // The document says version 2: the last commit kept the run running (see "the run document of a
      // running run").
      "reads a running run's commits consistently, as its document may be behind the log",
      { lag: 1, status: "running" as const, documentVersion: 2, reads: [true] },
    ],
  ])("%s", async (_, { lag, status, documentVersion, reads: expectedReads }) => {
    // Prepare
    const { writer, reader, runId, reads } = await runWithThreeCommits(lag, 0, status);
    // Act: an activation reads the document, then the log.
    const run = documentVersion === undefined ? undefined : await reader.getRun(runId);
    const events = await reader.getEvents(runId);
    // Assess
    expect(run?.version).toBe(documentVersion);
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(reads).toEqual(expectedReads);
    await writer.close();
    await reader.close();
  });

  it("with a log cache, reads only the commits after the log it holds, and needs no read for its own", async () => {
    // Prepare
    const { writer, reader, runId, froms } = await runWithThreeCommits(0, 8);
    const seqs = async () => (await reader.getEvents(runId)).map((event) => event.seq);
    // Act: a first read, two commits of another store, a commit of its own.
    const first = await seqs();
    await writer.commit(runId, 3, [logEvent(runId, 4, "c")], { status: "running", updatedAt: at });
    await writer.commit(runId, 4, [logEvent(runId, 5, "d"), logEvent(runId, 6, "e")], {
      status: "running",
      updatedAt: at,
    });
    const caughtUp = await seqs();
    await reader.commit(runId, 6, [logEvent(runId, 7, "f")], { status: "running", updatedAt: at });
    const own = await seqs();
    // Assess: each read asked from where its log ended; the log is the same as a fresh read's.
    expect([first, caughtUp, own]).toEqual([
      [1, 2, 3],
      [1, 2, 3, 4, 5, 6],
      [1, 2, 3, 4, 5, 6, 7],
    ]);
    expect(froms).toEqual([commitSk(1), commitSk(4), commitSk(8)]);
    const fresh = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    expect(await reader.getEvents(runId)).toEqual(await fresh.getEvents(runId));
    // A caller that sorts or trims what it got changes nothing the store keeps.
    (await reader.getEvents(runId)).reverse().pop();
    expect(await seqs()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await Promise.all([writer.close(), reader.close(), fresh.close()]);
  });

  it("with a log cache, reads the commits after its log consistently when a replica lags", async () => {
    // Prepare: the reader holds the log up to 3; the replica has not seen the writer's last commit.
    const { writer, reader, runId, reads, froms } = await runWithThreeCommits(1, 8);
    await reader.commit(runId, 3, [logEvent(runId, 4, "mine")], { status: "running", updatedAt: at });
    await reader.getEvents(runId);
    await writer.commit(runId, 4, [logEvent(runId, 5, "c")], { status: "running", updatedAt: at });
    await writer.commit(runId, 5, [logEvent(runId, 6, "d")], { status: "running", updatedAt: at });
    await reader.getRun(runId);
    reads.length = 0;
    froms.length = 0;
    // Act
    const events = await reader.getEvents(runId);
    // Assess
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(reads).toEqual([true]);
    expect(froms).toEqual([commitSk(5)]);
    await Promise.all([writer.close(), reader.close()]);
  });

  describe("a long run's segment", () => {
    const running = { status: "running" as const, updatedAt: at };

    /** Commits `count` log events, `perCommit` to a commit, after the log of `store` (which holds it). */
    async function commitLogEvents(store: DynamoDBStorage, runId: string, count: number, perCommit: number) {
      let version = (await store.getEvents(runId)).length;
      for (const end = version + count; version < end; version += perCommit) {
        const events = Array.from({ length: perCommit }, (_, i) => logEvent(runId, version + i + 1, `e${i}`));
        await store.commit(runId, version, events, running);
      }
      return version;
    }

    /** The segment items of a run: their keys and the seqs of the events each holds. */
    async function segmentsOf(runId: string) {
      const items = await rawItems(runId, "SEG#");
      return items.map((item) => {
        const seqs = (JSON.parse(unpackEvents(runId, item.z?.B as Uint8Array)) as WorkflowEvent[]).map(
          (event) => event.seq,
        );
        return { sk: item.sk?.S, first: seqs[0], last: seqs[seqs.length - 1], count: seqs.length };
      });
    }

    it("is written each time the log passes another 100 events, and a store new to the run reads the segments and then only the commits after them", async () => {
      // Prepare: 1 + 45 commits of 5 events: the log passes 100 events at version 101, 200 at 201.
      const { store: writer, runId } = await newStoredRun();
      const version = await commitLogEvents(writer, runId, 225, 5);
      const { client, froms } = laggingReplica(0);
      const reader = new DynamoDBStorage({ tableName: TABLE, client });
      // Act
      const events = await reader.getEvents(runId);
      // Assess: each segment ends where a commit ends; the second begins at event 101.
      expect(version).toBe(226);
      expect(SEGMENT_EVENTS).toBe(100);
      expect(await segmentsOf(runId)).toEqual([
        { sk: "SEG#000001", first: 1, last: 101, count: 101 },
        { sk: "SEG#000002", first: 101, last: 201, count: 101 },
      ]);
      expect(froms).toEqual([commitSk(202)]);
      expect(events.map((event) => event.seq)).toEqual(Array.from({ length: 226 }, (_, i) => i + 1));
      expect(events).toEqual(await writer.getEvents(runId));
      await Promise.all([writer.close(), reader.close()]);
    });

    const secondSegment = (runId: string) => ({ pk: { S: `RUN#${runId}` }, sk: { S: "SEG#000002" } });
    it.each([
      {
        damage: "missing (a failed write)",
        left: ["SEG#000001", "SEG#000003"],
        apply: (runId: string) =>
          dynamo.client().send(new DeleteItemCommand({ TableName: TABLE, Key: secondSegment(runId) })),
      },
      {
        damage: "unreadable (damaged bytes)",
        left: ["SEG#000001", "SEG#000002", "SEG#000003"],
        apply: (runId: string) =>
          dynamo.client().send(
            new UpdateItemCommand({
              TableName: TABLE,
              Key: secondSegment(runId),
              UpdateExpression: "SET z = :z",
              ExpressionAttributeValues: { ":z": { B: randomBytes(64) } },
            }),
          ),
      },
    ])("is read up to the first one $damage, then the commits from there", async ({ left, apply }) => {
      // Prepare: segments 1 to 3 (events 1-101, 101-201, 201-301); the second one damaged.
      const { store: writer, runId } = await newStoredRun();
      await commitLogEvents(writer, runId, 320, 10);
      const log = await writer.getEvents(runId);
      await apply(runId);
      const { client, froms } = laggingReplica(0);
      const reader = new DynamoDBStorage({ tableName: TABLE, client });
      // Act
      const events = await reader.getEvents(runId);
      // Assess
      expect((await rawItems(runId, "SEG#")).map((item) => item.sk?.S)).toEqual(left);
      expect(froms).toEqual([commitSk(102)]);
      expect(events).toEqual(log);
      await Promise.all([writer.close(), reader.close()]);
    });

    it("is not written when it would not fit in an item (large payloads inline), and the log is read from its commits", async () => {
      // Prepare: 95 small events, then five of 100 KB of random text (which compresses little).
      const { store: writer, runId } = await newStoredRun();
      await commitLogEvents(writer, runId, 94, 94);
      let version = 95;
      for (let i = 0; i < 5; i += 1, version += 1) {
        const big = logEvent(runId, version + 1, randomBytes(75 * 1024).toString("base64"));
        await writer.commit(runId, version, [big], running);
      }
      // Act
      const reader = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
      const events = await reader.getEvents(runId);
      // Assess
      expect(version).toBe(100);
      expect(await segmentsOf(runId)).toEqual([]);
      expect(events).toEqual(await writer.getEvents(runId));
      await Promise.all([writer.close(), reader.close()]);
    });
  });
});

describe("the run document of a running run", () => {
  const later = (ms: number) => new Date(Date.parse(at) + ms).toISOString();
  const running = (ms: number) => ({ status: "running" as const, updatedAt: later(ms) });

  /** The document's version and time, read by a store new to the run. */
  async function documentOf(runId: string) {
    const reader = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client(), logCacheSize: 0 });
    const run = await reader.getRun(runId);
    await reader.close();
    return { version: run?.version, status: run?.status, updatedAt: run?.updatedAt };
  }

  it("is left behind by commits that keep the run running, for less than DOCUMENT_LAG_MS of the run's time", async () => {
    // Prepare
    const { store, runId } = await newStoredRun();
    const commit = (version: number, patch: { status: "running" | "suspended"; updatedAt: string }) =>
      store.commit(runId, version, [logEvent(runId, version + 1, `e${version}`)], patch);
    // Act and assess: the first commit makes the run running (a status change), the next two only move it on.
    await commit(1, running(0));
    expect(await documentOf(runId)).toEqual({ version: 2, status: "running", updatedAt: later(0) });
    await commit(2, running(1_000));
    await commit(3, running(DOCUMENT_LAG_MS - 1));
    expect(await documentOf(runId)).toEqual({ version: 2, status: "running", updatedAt: later(0) });
    // DOCUMENT_LAG_MS after the document's time, the next commit updates it.
    await commit(4, running(DOCUMENT_LAG_MS));
    expect(await documentOf(runId)).toEqual({
      version: 5,
      status: "running",
      updatedAt: later(DOCUMENT_LAG_MS),
    });
    // A change of status always does.
    await commit(5, { status: "suspended", updatedAt: later(DOCUMENT_LAG_MS + 1) });
    expect(await documentOf(runId)).toEqual({
      version: 6,
      status: "suspended",
      updatedAt: later(DOCUMENT_LAG_MS + 1),
    });
    await commit(6, running(DOCUMENT_LAG_MS + 2));
    expect((await documentOf(runId)).version).toBe(7);
    // The log is exact all along.
    expect((await store.getEvents(runId)).map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await store.close();
  });

  it("is updated by a commit that sets tags, and by a store that does not know what the document says", async () => {
    // Prepare
    const { store, runId } = await newStoredRun();
    await store.commit(runId, 1, [logEvent(runId, 2, "a")], running(0));
    // Act: tags; then a commit of another store, which has read the log but not the document.
    await store.commit(runId, 2, [logEvent(runId, 3, "b")], { ...running(1), tags: { team: "a" } });
    const other = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    await other.getEvents(runId);
    await other.commit(runId, 3, [logEvent(runId, 4, "c")], running(2));
    // Assess
    const document = await documentOf(runId);
    expect(document.version).toBe(4);
    await Promise.all([store.close(), other.close()]);
  });

  it("is left behind by a store new to the run that reads it and the log, and whose next commit keeps the run running", async () => {
    // Prepare: the document says version 2; the log holds 4 events, all commits since keeping it running.
    const { store, runId } = await newStoredRun();
    for (const version of [1, 2, 3])
      await store.commit(runId, version, [logEvent(runId, version + 1, `e${version}`)], running(version));
    // Act: as an activation on a fresh instance: the document, the log, a commit.
    const other = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    await other.getRun(runId);
    const events = await other.getEvents(runId);
    await other.commit(runId, 4, [logEvent(runId, 5, "e4")], running(4));
    // Assess
    expect(events.length).toBe(4);
    expect(await documentOf(runId)).toEqual({ version: 2, status: "running", updatedAt: later(1) });
    expect((await other.getEvents(runId)).length).toBe(5);
    await Promise.all([store.close(), other.close()]);
  });

  it("is brought up to the log by a store that reads the log without the document", async () => {
    // Prepare: the document says version 2; the log holds 4 events.
    const { store, runId } = await newStoredRun();
    for (const version of [1, 2, 3])
      await store.commit(runId, version, [logEvent(runId, version + 1, `e${version}`)], running(version));
    expect((await documentOf(runId)).version).toBe(2);
    // Act
    const reader = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    const events = await reader.getEvents(runId);
    // Assess
    expect(events.length).toBe(4);
    expect(await documentOf(runId)).toEqual({ version: 4, status: "running", updatedAt: later(3) });
    await Promise.all([store.close(), reader.close()]);
  });
});

describe("the sweeper's stale scan", () => {
  it("goes on from sweep to sweep through the runs listed as running, then starts again from the oldest", async () => {
    // Prepare: four runs listed as running in one index shard, oldest first, none changed for days, on a table
    // of their own.
    const table = "tsworkflow-stale-scan";
    const client = dynamo.client();
    await createTable(client, table);
    const store = new DynamoDBStorage({ tableName: table, client });
    const sameShard: string[] = [];
    for (let i = 0; sameShard.length < 4; i += 1) {
      const runId = `run_scan_${i}`;
      if (shardOf(runId) === shardOf("run_scan_0")) sameShard.push(runId);
    }
    for (const [index, runId] of sameShard.entries()) {
      const at = new Date(Date.UTC(2026, 0, 1, 0, index)).toISOString();
      await store.createRun(newRunFixture({ runId, status: "running", createdAt: at, updatedAt: at }));
    }
    const now = Date.UTC(2026, 0, 10);
    // Act: sweeps that look at two runs per shard.
    const sweeps: string[][] = [];
    for (let i = 0; i < 4; i += 1) {
      const found = await store.findRunsToSweep({ now, staleBefore: now, limit: 2 });
      sweeps.push(found.stale.map((run) => run.runId).sort());
    }
    // Assess: the oldest two, the next two, nothing past the end, the oldest two again.
    const sorted = (ids: string[]) => [...ids].sort();
    expect(sweeps).toEqual([
      sorted(sameShard.slice(0, 2)),
      sorted(sameShard.slice(2, 4)),
      [],
      sorted(sameShard.slice(0, 2)),
    ]);
    client.destroy();
  });

  it("finds a pending run that never started, listed as running, and one an earlier version listed as pending", async () => {
    // Prepare: two pending runs unchanged for days; the second under the pending key of earlier versions.
    const table = "tsworkflow-stale-pending";
    const client = dynamo.client();
    await createTable(client, table);
    const store = new DynamoDBStorage({ tableName: table, client });
    const at = new Date(Date.UTC(2026, 0, 1)).toISOString();
    const [fresh, legacy] = ["run_pending_new", "run_pending_old"];
    for (const runId of [fresh, legacy])
      await store.createRun(newRunFixture({ runId, status: "pending", createdAt: at, updatedAt: at }));
    await client.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: `RUN#${legacy}` }, sk: { S: "RUN" } },
        UpdateExpression: "SET gsi1pk = :pending",
        ExpressionAttributeValues: { ":pending": { S: `STATUS#pending#${shardOf(legacy)}` } },
      }),
    );
    const now = Date.UTC(2026, 0, 10);
    // Act
    const found = await store.findRunsToSweep({ now, staleBefore: now, limit: 10 });
    // Assess
    expect(found.stale.map((run) => [run.runId, run.status]).sort()).toEqual([
      [fresh, "pending"],
      [legacy, "pending"],
    ]);
    client.destroy();
  });
});

/** The sort key of a PutItem's item. */
const itemSk = (input: Record<string, unknown>) => (input.Item as { sk?: { S?: string } } | undefined)?.sk?.S;

describe("DynamoDBStorage transactions", () => {
  it("answers an SDK retry of a run creation whose reply was lost as the success it was", async () => {
    // Prepare: the first reply to a TransactWriteItems is lost on the way back (the write happened).
    const client = dynamo.client();
    const sent = loseReplies(
      client,
      (command) => command === "TransactWriteItemsCommand" && sent.lost.length === 0,
    );
    const tokens = () =>
      sent.tries
        .filter((one) => one.command === "TransactWriteItemsCommand")
        .map((one) => one.input.ClientRequestToken);
    const store = new DynamoDBStorage({ tableName: TABLE, client });
    const fixture = newRunFixture({ idempotencyKey: `lost-reply-${Date.now()}` });
    // Act
    const created = await store.createRun(fixture);
    // Assess: the SDK sent the same transaction twice, with one token, and the second was a success.
    expect(sent.lost).toEqual(["TransactWriteItemsCommand"]);
    expect(tokens()).toHaveLength(2);
    expect(tokens()[0]).toMatch(/^[0-9a-f]{36}$/);
    expect(tokens()[1]).toBe(tokens()[0]);
    expect(created.created).toBe(true);
    expect(await store.getRun(fixture.run.runId)).toMatchObject({ status: "pending", version: 1 });
    expect((await store.getEvents(fixture.run.runId)).map((event) => event.type)).toEqual([
      "workflow_started",
    ]);
    await store.close();
    client.destroy();
  });

  it("gives a second start of a run with its id and key, later and from another store, the run the first created", async () => {
    // Prepare: as when a parent's activation is delivered again and starts its child once more (the child's
    // id and key are the same; its creation time is not). DynamoDB answers a transaction token it saw in
    // the last 10 minutes with other contents by IdempotentParameterMismatchException.
    const key = `again-${Date.now()}`;
    const first = newRunFixture({ idempotencyKey: key });
    const { runId } = first.run;
    const later = "2026-01-01T00:05:00.000Z";
    const second = newRunFixture({ runId, idempotencyKey: key, createdAt: later, updatedAt: later });
    const store = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    const other = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    await store.createRun(first);
    // Act
    const again = await other.createRun(second);
    // Assess
    expect(again.created).toBe(false);
    expect(again.run).toMatchObject({ runId, createdAt: first.run.createdAt });
    await store.close();
    await other.close();
  });

  it("answers an SDK retry of a commit whose reply was lost as the success it was, and still refuses another writer's", async () => {
    // Prepare: the first reply to the commit's PutItem is lost on the way back (the write happened).
    const client = dynamo.client();
    const isCommit = (command: string, input: Record<string, unknown>) =>
      command === "PutItemCommand" && itemSk(input) === commitSk(2);
    const sent = loseReplies(client, (command, input) => isCommit(command, input) && sent.lost.length === 0);
    const store = new DynamoDBEngineStore({ tableName: TABLE, client });
    const fixture = newRunFixture();
    const runId = fixture.run.runId;
    await store.createRun(fixture);
    // Act
    const committed = await store.commit(runId, 1, [logEvent(runId, 2, "mine")], {
      status: "running",
      updatedAt: at,
    });
    const other = store.commit(runId, 1, [logEvent(runId, 2, "another writer's")], {
      status: "running",
      updatedAt: at,
    });
    // Assess: the SDK sent the put twice; the second found the commit it had made and was a success.
    expect(sent.lost).toEqual(["PutItemCommand"]);
    const commitTries = sent.tries
      .filter((one) => isCommit(one.command, one.input))
      .map((one) => itemSk(one.input));
    expect(commitTries.slice(0, 2)).toEqual([commitSk(2), commitSk(2)]);
    expect(committed).toEqual({});
    await expect(other).rejects.toBeInstanceOf(VersionConflictError);
    expect((await store.getRun(runId))?.version).toBe(2);
    expect((await store.getEvents(runId)).map((e) => (e.type === "log_info" ? e.message : e.type))).toEqual([
      "workflow_started",
      "mine",
    ]);
    await store.close();
    client.destroy();
  });

  it.each([
    ["its first commit", (sk: unknown) => sk === commitSk(1)],
    ["its document", (sk: unknown) => sk === "RUN"],
  ])(
    "creates a run without a key or tags with two puts, and answers an SDK retry of %s whose reply was lost as the success it was",
    async (_, lostPut) => {
      // Prepare
      const client = dynamo.client();
      const sent = loseReplies(
        client,
        (command, input) => command === "PutItemCommand" && lostPut(itemSk(input)) && sent.lost.length === 0,
      );
      const store = new DynamoDBEngineStore({ tableName: TABLE, client });
      const fixture = newRunFixture();
      // Act
      const result = await store.createRun(fixture);
      // Assess: no transaction; the lost put was sent twice; the run is whole.
      expect(result.created).toBe(true);
      expect(sent.lost).toEqual(["PutItemCommand"]);
      expect(sent.tries.map((one) => one.command)).not.toContain("TransactWriteItemsCommand");
      const reader = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
      expect(await reader.getRun(fixture.run.runId)).toMatchObject({
        status: fixture.run.status,
        version: 1,
      });
      expect((await reader.getEvents(fixture.run.runId)).map((event) => event.type)).toEqual([
        "workflow_started",
      ]);
      // Another creation of the same run id is refused, as with the transaction (the same creation again
      // is the same write: answered as the success it was).
      const other = newRunFixture({ runId: fixture.run.runId, input: ["another"] });
      await expect(store.createRun(other)).rejects.toBeInstanceOf(VersionConflictError);
      expect((await store.createRun(fixture)).created).toBe(true);
      await Promise.all([store.close(), reader.close()]);
      client.destroy();
    },
  );

  it("fails a replayed transaction on its own writes without a token, and answers it with one", async () => {
    // Prepare: what a retry without ClientRequestToken meets, and what the token changes.
    const client = dynamo.client();
    const item = { pk: { S: `RUN#replay_${Date.now()}_b` }, sk: { S: "RUN" } };
    const send = (token?: string) =>
      client.send(
        new TransactWriteItemsCommand({
          ...(token ? { ClientRequestToken: token } : {}),
          TransactItems: [
            { Put: { TableName: TABLE, Item: item, ConditionExpression: "attribute_not_exists(pk)" } },
          ],
        }),
      );
    await send();
    await expect(send()).rejects.toBeInstanceOf(TransactionCanceledException);
    const token = `t${Date.now()}`;
    const other = { pk: { S: `RUN#replay_${Date.now()}_c` }, sk: { S: "RUN" } };
    const withToken = () =>
      client.send(
        new TransactWriteItemsCommand({
          ClientRequestToken: token,
          TransactItems: [
            { Put: { TableName: TABLE, Item: other, ConditionExpression: "attribute_not_exists(pk)" } },
          ],
        }),
      );
    await withToken();
    await expect(withToken()).resolves.toBeDefined();
    client.destroy();
  });
});

describe("DynamoDBStorage listing", () => {
  it("spreads status changes over sharded index keys and pages newest first with a cursor, each run once", async () => {
    // Prepare: 40 runs of one workflow in their own table, some moved to running.
    const table = `tsworkflow-listing-${Date.now()}`;
    const admin = dynamo.client();
    await createTable(admin, table);
    const store = new DynamoDBStorage({ tableName: table, client: admin });
    const workflowName = "listing_wf";
    const ids: string[] = [];
    for (let index = 0; index < 40; index += 1) {
      const fixture = newRunFixture({
        runId: `run_listing_${String(index).padStart(2, "0")}`,
        workflowName,
        createdAt: new Date(Date.UTC(2026, 0, 1, 0, index)).toISOString(),
      });
      fixture.startedEvent = { ...fixture.startedEvent, workflowName } as WorkflowEvent;
      await store.createRun(fixture);
      ids.push(fixture.run.runId);
      if (index % 2 === 0)
        await store.commit(fixture.run.runId, 1, [logEvent(fixture.run.runId, 2, "go")], {
          status: "running",
          updatedAt: at,
        });
    }
    // Act
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listRuns({ workflowName, limit: 7, ...(cursor ? { cursor } : {}) });
      pages.push(page.runs.map((run) => run.runId));
      cursor = page.nextCursor;
    } while (cursor);
    const running = await store.listRuns({ status: "running", limit: 100 });
    const pending = await store.listRuns({ status: "pending", limit: 100 });
    const keys = await admin.send(
      new ScanCommand({
        TableName: table,
        ProjectionExpression: "gsi1pk, gsi2pk",
        FilterExpression: "sk = :run",
        ExpressionAttributeValues: { ":run": { S: "RUN" } },
      }),
    );
    // Assess
    expect(pages.flat()).toEqual([...ids].reverse());
    expect(pages.slice(0, -1).every((page) => page.length === 7)).toBe(true);
    expect(running.runs.map((run) => run.runId)).toEqual(ids.filter((_, index) => index % 2 === 0).reverse());
    expect(running.nextCursor).toBeUndefined();
    const statusKeys = new Set((keys.Items ?? []).map((item) => item.gsi1pk?.S));
    const workflowKeys = new Set((keys.Items ?? []).map((item) => item.gsi2pk?.S));
    expect(statusKeys.size).toBeGreaterThanOrEqual(16);
    expect(workflowKeys.size).toBeGreaterThanOrEqual(10);
    expect(pending.runs.map((run) => run.runId)).toEqual(ids.filter((_, index) => index % 2 === 1).reverse());
    // A pending run is listed as running from the start: its first activation moves no index key.
    for (const key of statusKeys) expect(key).toMatch(/^STATUS#running#\d{2}$/);
    await expect(store.listRuns({ cursor: "not-a-cursor" })).rejects.toMatchObject({
      name: "InvalidRunQueryError",
    });
    await expect(store.listRuns({ limit: -1 })).rejects.toMatchObject({ name: "InvalidRunQueryError" });
    await store.close();
    admin.destroy();
  });

  it("still lists as pending a run that an earlier version listed under its own pending key", async () => {
    // Prepare
    const { store, runId } = await newStoredRun();
    await dynamo.client().send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { pk: { S: `RUN#${runId}` }, sk: { S: "RUN" } },
        UpdateExpression: "SET gsi1pk = :pending",
        ExpressionAttributeValues: { ":pending": { S: `STATUS#pending#${shardOf(runId)}` } },
      }),
    );
    // Act
    const { runs } = await store.listRuns({ status: "pending", limit: 1000 });
    // Assess
    expect(runs.map((run) => run.runId)).toContain(runId);
    await store.close();
  });

  it("leaves listing runs to DynamoDBStorage: the handlers' DynamoDBEngineStore says where to list them", async () => {
    // Prepare: a run written by the engine's store, read back by the listing store.
    const engineStore = new DynamoDBEngineStore({ tableName: TABLE, client: dynamo.client() });
    const lister = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    const fixture = newRunFixture({ workflowName: "engine_store_listed" });
    await engineStore.createRun(fixture);
    // Act / Assess
    await expect(engineStore.listRuns()).rejects.toMatchObject({
      name: "ConfigurationError",
      message: expect.stringContaining("createClient().listRuns()"),
    });
    const { runs } = await lister.listRuns({ workflowName: fixture.run.workflowName, limit: 10 });
    expect(runs.map((run) => run.runId)).toContain(fixture.run.runId);
    await engineStore.close();
    await lister.close();
  });

  it("lists from a seq only the outcomes of attempts issued since, and always events, cancellations and untagged outcomes", async () => {
    // Prepare
    const store = new DynamoDBStorage({ tableName: TABLE, client: dynamo.client() });
    const { run } = newRunFixture({ workflowName: "outcome_floor" });
    const outcome = (stepId: string, issueSeq?: number) => ({
      runId: run.runId,
      stepId,
      attempt: 1,
      recordedAt: new Date().toISOString(),
      ok: true as const,
      result: stepId,
      ...(issueSeq === undefined ? {} : { issueSeq }),
    });
    for (const [stepId, seq] of [
      ["work#0", 2],
      ["work#1", 4],
      ["work#2", 12],
      ["$cancel", undefined],
      ["$signal:go:1", undefined],
      ["legacy#0", undefined],
    ] as const)
      await store.putOutcome(outcome(stepId, seq));
    // Act
    const from = await store.listOutcomes(run.runId, 4);
    const all = await store.listOutcomes(run.runId);
    // Assess
    expect(from.map((o) => o.stepId).sort()).toEqual([
      "$cancel",
      "$signal:go:1",
      "legacy#0",
      "work#1",
      "work#2",
    ]);
    expect(all).toHaveLength(6);
    expect(await store.getOutcome(run.runId, "work#2", 1, 12)).toMatchObject({ ok: true, result: "work#2" });
    expect(await store.getOutcome(run.runId, "work#2", 1)).toBeUndefined();
    expect(await store.putOutcome(outcome("work#2", 12))).toBe(false);
    await store.close();
  });
});
