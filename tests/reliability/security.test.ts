/**
 * Security: idempotency keys that look like key syntax, paths or expression tokens stay plain data on
 * every store (memory, file, Redis, DynamoDB Local); step inputs and results never reach the logs
 * unless the workflow logs them (embedded file runtime, Redis worker, AWS handlers); the dashboard
 * listens on loopback only and wants its token over real HTTP.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  configureLogging,
  getStepInfo,
  IdempotencyConflictError,
  InvalidIdempotencyKeyError,
  log,
  sleep,
  step,
  workflow,
} from "tsworkflow";
import { DynamoDBStorage } from "tsworkflow/aws";
import type { EventStore } from "tsworkflow/engine";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { createRedisRuntime, type RedisServer, RedisStorage, startRedisServer } from "tsworkflow/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTable } from "../../lib/adapters/aws/table-schema.ts";
import { serveDashboard } from "../../lib/cli/dashboard/server.ts";
import { type DynamoDBLocal, folderDynamoDBLocal } from "../aws/harness/dynamodb-local.ts";
import { waitFor } from "../aws/harness/wait.ts";
import { manualEngine } from "../core/support/manual-engine.ts";
import { startSqsKit } from "./support/sqs-kit.ts";

/** Keys that look like Redis key syntax, DynamoDB key prefixes and expression tokens, paths, shell, unicode. */
const NASTY_KEYS = [
  "a}:{b",
  "IDEM#x",
  "x",
  "IDEM#",
  "RUN#x",
  "RUN#run_1",
  "../",
  "../../etc/passwd",
  "..",
  "/abs/path",
  "a/b\\c",
  "tsw:idem:x",
  "*",
  "[a-z]?",
  ":pk",
  "#status",
  "attribute_not_exists(pk)",
  "a b",
  "'quoted'",
  '"double"',
  "$(rm -rf /)",
  "%00",
  "é",
  "e\u0301",
  "日本語🚀",
  "k".repeat(256),
  "🚀".repeat(128),
];

const INVALID_KEYS = ["", "k".repeat(257), "line\nbreak", "nul\u0000", "del\u007f", "tab\tkey"];

const order = workflow("sec_order", async (n: number) => n);

let server: RedisServer;
let dynamo: DynamoDBLocal;
const TABLE = "tsworkflow-security";

beforeAll(async () => {
  configureLogging({ level: "silent" });
  [server, dynamo] = await Promise.all([startRedisServer(), folderDynamoDBLocal()]);
  const admin = dynamo.client();
  await createTable(admin, TABLE);
  admin.destroy();
});

afterAll(async () => {
  configureLogging();
  await Promise.all([server?.stop(), dynamo?.stop()]);
});

interface KeyBackend {
  store: EventStore;
  /** Every place the store wrote to, as names a key could have reached. */
  footprint(): Promise<string[]>;
  /** What the footprint must be made of, given the run ids and keys used. */
  expected(runIds: string[], keys: string[]): string[];
  close(): Promise<void>;
}

const KEY_BACKENDS: [string, () => Promise<KeyBackend>][] = [
  [
    "memory",
    async () => ({
      store: new MemoryStorage(),
      footprint: async () => [],
      expected: () => [],
      close: async () => {},
    }),
  ],
  [
    "file",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "tsw-security-"));
      const store = new FileStorage({ dir });
      const walk = (at: string): string[] =>
        readdirSync(at, { withFileTypes: true }).flatMap((entry) =>
          entry.isDirectory() ? walk(join(at, entry.name)) : [relative(dir, join(at, entry.name))],
        );
      return {
        store,
        footprint: async () => walk(dir).sort(),
        expected: (runIds) =>
          [join("lock", "1"), ...runIds.map((runId) => join("runs", `${runId}.jsonl`))].sort(),
        async close() {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  ],
  [
    "Redis",
    async () => {
      const prefix = `sec-${randomUUID().slice(0, 8)}:`;
      const store = new RedisStorage({ redis: server.url, prefix });
      return {
        store,
        // Every key in the database: a key that escaped the prefix would show up here.
        footprint: async () =>
          (await store.client.keys("*"))
            .filter((key) => !key.startsWith("sec-") || key.startsWith(prefix))
            .sort(),
        expected: (runIds, keys) =>
          [
            ...keys.map((key) => `${prefix}idem:${key}`),
            ...runIds.flatMap((runId) => [`${prefix}run:${runId}`, `${prefix}events:${runId}`]),
            `${prefix}idx:all`,
            `${prefix}idx:status:pending`,
            `${prefix}idx:wf:sec_order`,
            `${prefix}idx:wf-status:pending:sec_order`,
          ].sort(),
        close: () => store.close(),
      };
    },
  ],
  [
    "DynamoDB",
    async () => {
      const client = dynamo.client();
      const store = new DynamoDBStorage({ client, tableName: TABLE });
      return {
        store,
        footprint: async () => {
          const items: string[] = [];
          let start: Record<string, unknown> | undefined;
          do {
            const page = await client.send(
              new ScanCommand({ TableName: TABLE, ...(start ? { ExclusiveStartKey: start as never } : {}) }),
            );
            for (const item of page.Items ?? []) items.push(`${item.pk?.S} ${item.sk?.S}`);
            start = page.LastEvaluatedKey;
          } while (start);
          return items.filter((item) => item.startsWith("IDEM#")).sort();
        },
        expected: (_runIds, keys) => keys.map((key) => `IDEM#${key} IDEM`).sort(),
        async close() {
          await store.close();
          client.destroy();
        },
      };
    },
  ],
];

describe.each(KEY_BACKENDS)("idempotency keys on the %s store", (_name, open) => {
  it("keeps keys that look like key syntax, paths or expressions apart, each starting one run, and nothing else", async () => {
    // Prepare
    const backend = await open();
    const m = manualEngine({ store: backend.store });
    try {
      // Act
      const first = [];
      for (const [index, key] of NASTY_KEYS.entries())
        first.push(await m.engine.start(order, [index], { idempotencyKey: key }));
      const again = [];
      for (const [index, key] of NASTY_KEYS.entries())
        again.push(await m.engine.start(order, [index], { idempotencyKey: key }));
      const conflicts = await Promise.allSettled(
        NASTY_KEYS.map((key, index) => m.engine.start(order, [index + 1_000], { idempotencyKey: key })),
      );
      const invalid = await Promise.allSettled(
        INVALID_KEYS.map((key) => m.engine.start(order, [0], { idempotencyKey: key })),
      );
      const runIds = first.map((started) => started.runId);
      // Assess
      expect(first.every((started) => started.created)).toBe(true);
      expect(new Set(runIds).size).toBe(NASTY_KEYS.length);
      expect(again.map((started) => [started.runId, started.created])).toEqual(
        runIds.map((id) => [id, false]),
      );
      for (const [index, runId] of runIds.entries()) {
        const run = await backend.store.getRun(runId);
        expect(run?.idempotencyKey).toBe(NASTY_KEYS[index]);
        expect(run?.input).toEqual([index]);
      }
      for (const conflict of conflicts) {
        expect(conflict.status).toBe("rejected");
        expect((conflict as PromiseRejectedResult).reason).toBeInstanceOf(IdempotencyConflictError);
      }
      for (const refusal of invalid) {
        expect(refusal.status).toBe("rejected");
        expect((refusal as PromiseRejectedResult).reason).toBeInstanceOf(InvalidIdempotencyKeyError);
      }
      expect(await backend.footprint()).toEqual(backend.expected(runIds, NASTY_KEYS));
    } finally {
      await backend.close();
    }
  });
});

describe("step inputs and results in the logs", () => {
  const SECRET = `card-${randomUUID()}`;
  const SHOWN = `shown-${randomUUID()}`;
  let logDir: string;
  let logFile: string;

  const tokenize = step("sec_tokenize", async (card: { number: string }) => ({
    token: `${card.number}-tok`,
  }));
  const charge = step(
    "sec_charge",
    async (token: { token: string }) => {
      if (getStepInfo()?.attempt === 1) throw new Error("gateway timeout");
      return { receipt: `${token.token}-paid` };
    },
    { retryDelay: "100ms" },
  );
  const checkout = workflow("sec_checkout", async (card: { number: string }) => {
    log.info("checkout started");
    const token = await tokenize(card);
    await sleep("50ms");
    return charge(token);
  });
  const confessing = workflow("sec_confessing", async (card: { number: string }) => {
    log.info("the workflow logs this on purpose", { card: card.number });
    return "done";
  });

  beforeAll(() => {
    logDir = mkdtempSync(join(tmpdir(), "tsw-security-logs-"));
    logFile = join(logDir, "debug.log");
    configureLogging({ level: "debug", logFile, jsonLogs: true });
  });

  afterAll(() => {
    configureLogging({ level: "silent" });
    rmSync(logDir, { recursive: true, force: true });
  });

  /** Waits until the log file mentions `runId`, then returns all of it. */
  const logText = (runId: string) =>
    waitFor(`log lines about ${runId}`, () => {
      const text = readFileSync(logFile, "utf8");
      return text.includes(runId) ? text : undefined;
    });

  it("leaves them out on the embedded file runtime, the Redis worker and the AWS handlers, even at debug level", async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), "tsw-security-runs-"));
    const embedded = new LocalRuntime({ storage: new FileStorage({ dir }) });
    const redis = createRedisRuntime({ url: server.url, prefix: `sec-logs-${randomUUID().slice(0, 8)}:` });
    await redis.startWorker();
    const aws = await startSqsKit([checkout, confessing]);
    try {
      // Act
      const runs = [
        await embedded.start(checkout, [{ number: SECRET }]),
        await redis.start(checkout, [{ number: SECRET }]),
        await aws.start("sec_checkout", [{ number: SECRET }]),
      ];
      const results = [
        await embedded.waitForRun(runs[0]?.runId as string, { timeoutMs: 20_000 }),
        await redis.waitForRun(runs[1]?.runId as string, { timeoutMs: 20_000 }),
        await waitFor("the AWS run", async () => {
          const run = await aws.store.getRun(runs[2]?.runId as string);
          return run?.status === "completed" ? run : undefined;
        }),
      ];
      const confessed = await embedded.start(confessing, [{ number: SHOWN }]);
      await embedded.waitForRun(confessed.runId, { timeoutMs: 20_000 });
      const text = await logText(confessed.runId);
      // Assess
      for (const run of results) expect(run.result).toEqual({ receipt: `${SECRET}-tok-paid` });
      for (const { runId } of runs) expect(text).toContain(runId);
      expect(text).toContain("gateway timeout");
      expect(text).toContain("checkout started");
      expect(text).not.toContain(SECRET);
      expect(text).toContain(SHOWN);
    } finally {
      await embedded.close();
      await redis.close();
      await aws.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The status of GET / on `host:port`, or the connection error's code. */
function get(
  host: string,
  port: number,
  path = "/",
  headers: Record<string, string> = {},
): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, headers, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    req.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

/** Addresses of this machine that are not loopback, and one loopback address other than 127.0.0.1. */
function otherAddresses(): string[] {
  const external = Object.values(networkInterfaces())
    .flat()
    .filter((address) => address && !address.internal && address.family === "IPv4")
    .map((address) => address?.address as string);
  return ["127.0.0.2", ...external];
}

describe("the dashboard's socket", () => {
  it("listens on 127.0.0.1 only and asks for its token over HTTP", async () => {
    // Prepare: a server bound to every address shows the other addresses do reach this machine.
    const open = createServer((_req, res) => res.end("open"));
    await new Promise<void>((resolve) => open.listen(0, "0.0.0.0", resolve));
    const openPort = (open.address() as AddressInfo).port;
    const dashboard = await serveDashboard({ storage: new MemoryStorage(), port: 0, token: "s3cret-token" });
    try {
      // Act
      const control = await Promise.all(otherAddresses().map((address) => get(address, openPort)));
      const elsewhere = await Promise.all(otherAddresses().map((address) => get(address, dashboard.port)));
      const withoutToken = await get("127.0.0.1", dashboard.port);
      const wrongToken = await get("127.0.0.1", dashboard.port, "/?token=guess");
      const withToken = await get("127.0.0.1", dashboard.port, "/?token=s3cret-token");
      const api = await get("127.0.0.1", dashboard.port, "/api/runs", {
        Authorization: "Bearer s3cret-token",
      });
      // Assess
      expect(dashboard.url).toBe(`http://127.0.0.1:${dashboard.port}/`);
      expect(control.every((status) => status === 200)).toBe(true);
      expect(elsewhere.every((status) => typeof status === "string")).toBe(true);
      expect([withoutToken, wrongToken, withToken, api]).toEqual([401, 401, 200, 200]);
    } finally {
      await dashboard.close();
      await new Promise((resolve) => open.close(resolve));
    }
  });
});
