import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDBStorage } from "../../lib/adapters/aws/dynamodb-storage.ts";
import { createTable } from "../../lib/adapters/aws/table-schema.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import type { RunRecord } from "../../lib/ports/event-store.ts";
import { type RedisServer, startRedisServer } from "../../lib/redis/redis-server.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { startLocal } from "../../lib/testing/index.ts";
import { type DynamoDBLocal, startDynamoDBLocal } from "../aws/harness/dynamodb-local.ts";
import { TEST_REGION } from "../aws/harness/free-port.ts";
import { hello, reminder } from "./fixtures/workflows.ts";
import { runCli } from "./run-cli.ts";

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
});

describe("tsworkflow on DynamoDB", () => {
  const tableName = "tsworkflow-cli";
  let dynamodb: DynamoDBLocal;
  let runId: string;

  beforeAll(async () => {
    configureLogging({ level: "silent" });
    dynamodb = await startDynamoDBLocal();
    const client = dynamodb.client();
    await createTable(client, tableName);
    const storage = new DynamoDBStorage({ client, tableName });
    runId = await startLocal(hello, ["dynamo"], { storage, timeSkipping: true });
    client.destroy();
  });

  afterAll(async () => {
    await dynamodb?.stop();
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
