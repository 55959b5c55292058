import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDBStorage } from "../../lib/adapters/aws/dynamodb-storage.ts";
import { S3Payloads } from "../../lib/adapters/aws/s3-payloads.ts";
import { createTable } from "../../lib/adapters/aws/table-schema.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { map } from "../../lib/core/map.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import type { RunRecord } from "../../lib/ports/event-store.ts";
import { type RedisServer, startRedisServer } from "../../lib/redis/redis-server.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { startLocal } from "../../lib/testing/index.ts";
import { type DynamoDBLocal, folderDynamoDBLocal } from "../aws/harness/dynamodb-local.ts";
import { freePort, TEST_REGION } from "../aws/harness/free-port.ts";
import { type S3Emulator, startS3 } from "../aws/harness/s3.ts";
import { hello, reminder } from "./fixtures/workflows.ts";
import { runCli } from "./run-cli.ts";
import { printedSeqs, seqRange } from "./support/event-rows.ts";

/**
 * The DynamoDB Local of the test run (a JVM that takes seconds to start: see vitest.config.ts) for the file's
 * DynamoDB suites, each with its own table; its stop() leaves it running for the next folder.
 */
let dynamodbStarted: Promise<DynamoDBLocal> | undefined;
const sharedDynamoDBLocal = () => {
  dynamodbStarted ??= folderDynamoDBLocal();
  return dynamodbStarted;
};

afterAll(async () => {
  await (await dynamodbStarted)?.stop();
});

describe("tsworkflow on Redis", () => {
  const prefix = `tsw-cli-${process.pid}:`;
  let server: RedisServer;
  let runtime: RedisRuntime;

  beforeAll(async () => {
    configureLogging({ level: "silent" });
    server = await startRedisServer();
    // This process is the worker: it runs the workflows the CLI looks at and acts on.
    runtime = createRedisRuntime({ url: server.url, prefix });
    await runtime.startWorker();
  });

  afterAll(async () => {
    await runtime?.close();
    await server?.stop();
  });

  it("lists and shows the runs, and cancels a sleeping one that a worker then ends", async () => {
    // Prepare
    const { runId: greeted } = await runtime.start(hello, ["redis"]);
    await runtime.waitForRun(greeted, { timeoutMs: 15_000 });
    const { runId: sleeping } = await runtime.start(reminder, ["user_9"]);
    for (
      let run = await runtime.getRun(sleeping);
      run?.status !== "suspended";
      run = await runtime.getRun(sleeping)
    )
      await new Promise((resolve) => setTimeout(resolve, 20));
    const backend = ["--redis", server.url, "--prefix", prefix];
    // Act
    const [list, show] = await Promise.all([
      runCli(["runs", "list", "--json", ...backend]),
      runCli(["runs", "show", greeted, ...backend]),
    ]);
    const cancel = await runCli(["runs", "cancel", sleeping, "--reason", "from the CLI", ...backend]);
    const cancelled = await runtime.waitForRun(sleeping, { timeoutMs: 15_000 });
    // Assess
    expect(
      (JSON.parse(list.stdout) as { runs: RunRecord[] }).runs.map((run) => [run.runId, run.status]),
    ).toEqual([
      [sleeping, "suspended"],
      [greeted, "completed"],
    ]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('"hello redis"');
    expect(cancel.code).toBe(0);
    expect(cancelled.status).toBe("cancelled");
    const events = await runtime.getEvents(sleeping);
    expect(events.at(-1)).toMatchObject({ type: "workflow_cancelled", reason: "from the CLI" });
  });

  it("prints the ends of a long log, every event with --all, and a window with --after and --limit", async () => {
    // Prepare
    const { runId } = await runtime.start(mapOnRedis, [60]);
    await runtime.waitForRun(runId, { timeoutMs: 60_000 });
    const backend = ["--redis", server.url, "--prefix", prefix];
    // Act
    const [ends, all, window, json] = await Promise.all([
      runCli(["runs", "events", runId, ...backend]),
      runCli(["runs", "events", runId, "--all", ...backend]),
      runCli(["runs", "events", runId, "--after", "60", "--limit", "5", ...backend]),
      runCli(["runs", "events", runId, "--json", "--after", "120", ...backend]),
    ]);
    // Assess
    expect(printedSeqs(ends.stdout)).toEqual([...seqRange(1, 50), ...seqRange(73, 122)]);
    expect(ends.stdout).toContain(
      "… 22 more events (--all prints every event, --after <seq> --limit <n> a window)",
    );
    expect(printedSeqs(all.stdout)).toEqual(seqRange(1, 122));
    expect(printedSeqs(window.stdout)).toEqual(seqRange(61, 65));
    expect(window.stderr.trim()).toBe("More events: pass --after 65 --limit 5 for the next ones.");
    expect((JSON.parse(json.stdout) as WorkflowEvent[]).map((event) => [event.seq, event.type])).toEqual([
      [121, "step_completed"],
      [122, "workflow_completed"],
    ]);
  });
});

const tripleOnRedis = step("cli_redis_triple", async (n: number) => n * 3);
/** 60 one-step items: 122 events, over the 100 that `runs events` prints whole. */
const mapOnRedis = workflow("cli_redis_map", async (count: number) =>
  map(
    Array.from({ length: count }, (_, index) => index),
    (index) => tripleOnRedis(index),
  ),
);

describe("tsworkflow on DynamoDB", () => {
  const tableName = "tsworkflow-cli";
  let dynamodb: DynamoDBLocal;
  let runId: string;

  beforeAll(async () => {
    configureLogging({ level: "silent" });
    dynamodb = await sharedDynamoDBLocal();
    const client = dynamodb.client();
    await createTable(client, tableName);
    const storage = new DynamoDBStorage({ client, tableName });
    runId = await startLocal(hello, ["dynamo"], { storage, timeSkipping: true });
    client.destroy();
  });

  it("lists a run and prints its events from the table", async () => {
    // Prepare
    const backend = ["--table", tableName, "--region", TEST_REGION, "--endpoint", dynamodb.endpoint];
    // Act
    const [list, events, missing] = await Promise.all([
      runCli(["runs", "list", ...backend], { AWS_ACCESS_KEY_ID: undefined, AWS_PROFILE: undefined }),
      runCli(["runs", "events", runId, "--json", ...backend]),
      runCli([
        "runs",
        "list",
        "--table",
        "no-such-table",
        "--region",
        TEST_REGION,
        "--endpoint",
        dynamodb.endpoint,
      ]),
    ]);
    // Assess
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${runId}\\s+hello\\s+completed`));
    expect((JSON.parse(events.stdout) as WorkflowEvent[]).map((event) => event.type)).toEqual([
      "workflow_started",
      "step_started",
      "step_completed",
      "workflow_completed",
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('DynamoDB table "no-such-table"');
    expect(missing.stderr).not.toContain("Warning");
  });
});

const BUCKET = "tsworkflow-cli-payloads";
/** A report over 64 KB: stored in the payload bucket, its reference in the table. */
const buildReport = step("cli_build_report", async (characters: number) => "r".repeat(characters));
const bigReport = workflow("cli_big_report", async (characters: number) => {
  const report = await buildReport(characters);
  return { length: report.length, report };
});

describe("tsworkflow on DynamoDB with payloads in S3", () => {
  const tableName = "tsworkflow-cli-s3";
  let dynamodb: DynamoDBLocal;
  let s3: S3Emulator;
  let runId: string;
  /** s3rver checks signatures against its own key pair (DynamoDB Local takes any key). */
  const s3rverKey = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };

  beforeAll(async () => {
    configureLogging({ level: "silent" });
    [dynamodb, s3] = await Promise.all([sharedDynamoDBLocal(), startS3()]);
    await s3.createBucket(BUCKET);
    const client = dynamodb.client();
    await createTable(client, tableName);
    const payloads = new S3Payloads({ client: s3.client(), bucket: BUCKET });
    const storage = new DynamoDBStorage({ client, tableName, payloads });
    runId = await startLocal(bigReport, [300_000], { storage, timeSkipping: true });
    client.destroy();
    await payloads.close();
  });

  afterAll(async () => {
    await s3?.stop();
  });

  it("reads a run whose result is in the payload bucket, from --s3-endpoint or TSWORKFLOW_S3_ENDPOINT", async () => {
    // Prepare
    const backend = ["--table", tableName, "--region", TEST_REGION, "--endpoint", dynamodb.endpoint];
    // Act
    const [show, events] = await Promise.all([
      runCli(["runs", "show", runId, ...backend, "--s3-endpoint", s3.endpoint], s3rverKey),
      runCli(["runs", "events", runId, "--json", ...backend], {
        ...s3rverKey,
        TSWORKFLOW_S3_ENDPOINT: s3.endpoint,
      }),
    ]);
    // Assess
    expect(show.stderr).toBe("");
    expect(show.code).toBe(0);
    expect(show.stdout).toContain("completed");
    expect(show.stdout).toContain('"length": 300000');
    expect(events.code).toBe(0);
    const completed = (JSON.parse(events.stdout) as WorkflowEvent[]).at(-1);
    expect(completed).toMatchObject({ type: "workflow_completed", result: { length: 300_000 } });
    expect((completed as { result: { report: string } }).result.report).toBe("r".repeat(300_000));
  });

  it("names S3 and the bucket, not the table, when the payload bucket cannot be reached", async () => {
    // Prepare: nothing listens on this port.
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    // Act
    const [show, misused] = await Promise.all([
      runCli(
        [
          "runs",
          "show",
          runId,
          "--table",
          tableName,
          "--region",
          TEST_REGION,
          "--endpoint",
          dynamodb.endpoint,
          "--s3-endpoint",
          nowhere,
        ],
        s3rverKey,
      ),
      runCli(["runs", "list", "--s3-endpoint", s3.endpoint]),
    ]);
    // Assess
    expect(show.code).toBe(1);
    expect(show.stderr).toContain(
      `Cannot use the S3 bucket "${BUCKET}" at ${nowhere} (a payload of run ${runId})`,
    );
    expect(show.stderr).toContain("--s3-endpoint or TSWORKFLOW_S3_ENDPOINT");
    expect(show.stderr).not.toContain("DynamoDB");
    expect(misused.code).toBe(2);
    expect(misused.stderr).toContain("--s3-endpoint is the endpoint of the payload bucket");
  });
});
