/**
 * Options given at a call (`start()`, `waitForRun()`, `listRuns()`, `configure()`, `new LocalRuntime()`,
 * `new FileStorage()`, `createRedisRuntime()`, `createTestEnvironment()`, `waitForEvent()`, `createWebhook()`)
 * are checked as `step()`'s are: a misspelt
 * or bad one is a `ConfigurationError` naming the option and what to use, never ignored.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigurationError,
  cancelRun,
  configure,
  configureLogging,
  createWebhook,
  InvalidDurationError,
  listRuns,
  shutdown,
  start,
  step,
  waitForEvent,
  waitForRun,
  workflow,
} from "tsworkflow";
import { createClient, loadClientConfig } from "tsworkflow/aws";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { createRedisRuntime } from "tsworkflow/redis";
import { createTestEnvironment } from "tsworkflow/testing";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

/** Options as a JavaScript caller or a computed object may give them: no compile-time check. */
const untyped = (options: Record<string, unknown>) => options as never;

const greet = workflow("call_options_greet", async (name: string) => `hello ${name}`);
const waiting = workflow("call_options_waiting", async () => waitForEvent("never"));

afterEach(() => shutdown());

describe("new LocalRuntime() options", () => {
  it.each<[string, Record<string, unknown>, string]>([
    [
      "a concurrency of 0, which would run no step",
      { concurrency: 0 },
      "new LocalRuntime(): concurrency must be an integer >= 1, got 0.",
    ],
    [
      "a negative concurrency",
      { concurrency: -3 },
      "new LocalRuntime(): concurrency must be an integer >= 1, got -3.",
    ],
    [
      "a concurrency that is no number",
      { concurrency: "x" },
      'new LocalRuntime(): concurrency must be an integer >= 1, got "x".',
    ],
    [
      "a misspelt option",
      { concurency: 3 },
      'new LocalRuntime(): unknown option "concurency". The options are storage, dir, concurrency, clock, timers, recover, inlineSteps, slots, rates, telemetry, schedules, scheduleStore, limits, registry, inbox, onRunFinished.',
    ],
    [
      "timers that do not exist",
      { timers: "fake" },
      'new LocalRuntime(): timers must be "real" or "manual", got "fake".',
    ],
    [
      "a negative inbox poll",
      { inbox: { pollMs: -1 } },
      "new LocalRuntime(): inbox.pollMs must be an integer >= 1, got -1.",
    ],
    [
      "an inbox poll longer than a Node timer holds, which would poll without a pause",
      { inbox: { pollMs: 2 ** 31 } },
      "new LocalRuntime(): inbox.pollMs must be at most 2147483647 ms (about 24.8 days, the longest a timer waits), got 2147483648.",
    ],
    [
      "a misspelt inbox option",
      { inbox: { pollOnce: true } },
      'new LocalRuntime(): unknown option "inbox.pollOnce". The options are inbox.pollMs, inbox.pollOnly.',
    ],
    [
      "an empty dir, which would be the current directory",
      { dir: "" },
      'new LocalRuntime(): dir must be a directory path, e.g. "./.tsworkflow", got "".',
    ],
    [
      "a storage that is no EventStore, which would end the process where it is first used",
      { storage: {} },
      "new LocalRuntime(): storage must be an EventStore such as new MemoryStorage() or new FileStorage({ dir }), got {}.",
    ],
    [
      "both storage and dir",
      { storage: new MemoryStorage(), dir: "./x" },
      "new LocalRuntime(): give storage or dir, not both (dir is where the default FileStorage keeps its files; pass new FileStorage({ dir }) as storage instead).",
    ],
  ])("refuses %s", (_case, options, message) => {
    expect(() => new LocalRuntime(untyped(options))).toThrow(new ConfigurationError(message));
  });
});

describe("new FileStorage() options", () => {
  let cwd: string;
  beforeEach(() => {
    cwd = mkdtempSync(join(tmpdir(), "tsw-file-options-"));
    vi.spyOn(process, "cwd").mockReturnValue(cwd);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(cwd, { recursive: true, force: true });
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      "an empty dir, which would be the current directory",
      { dir: "" },
      'new FileStorage(): dir must be a directory path, e.g. "./.tsworkflow", got "".',
    ],
    [
      "a misspelt readOnly, which would take the directory's lock from the app writing there",
      { readonly: true },
      'new FileStorage(): unknown option "readonly". The options are dir, readOnly, finishedCacheEvents, lockStaleMs.',
    ],
    [
      "a readOnly that is no boolean",
      { readOnly: "yes" },
      'new FileStorage(): readOnly must be true or false, got "yes".',
    ],
    [
      "a cache of no events",
      { finishedCacheEvents: 0 },
      "new FileStorage(): finishedCacheEvents must be an integer >= 1, got 0.",
    ],
    [
      "a lock lease that is no number",
      { lockStaleMs: "10s" },
      'new FileStorage(): lockStaleMs must be an integer >= 1, got "10s".',
    ],
    [
      "a lock lease so long that a crashed owner's lock would stand for over 24 days",
      { lockStaleMs: 5 * 2 ** 31 },
      "new FileStorage(): lockStaleMs must be at most 2147483647 ms (about 24.8 days, the longest a timer waits), got 10737418240.",
    ],
  ])("refuses %s, creating nothing", (_case, options, message) => {
    expect(() => new FileStorage(untyped(options))).toThrow(new ConfigurationError(message));
    // Where `dir: ""` would have put its files (path.resolve("") is process.cwd()).
    expect(existsSync(join(cwd, "runs"))).toBe(false);
  });

  it("takes an empty TSWORKFLOW_DIR as unset, as the CLI does, not as the current directory", async () => {
    const previous = process.env.TSWORKFLOW_DIR;
    process.env.TSWORKFLOW_DIR = "";
    try {
      const storage = new FileStorage();
      await storage.close();
      expect(existsSync(join(cwd, ".tsworkflow", "runs"))).toBe(true);
      expect(existsSync(join(cwd, "runs"))).toBe(false);
    } finally {
      if (previous === undefined) delete process.env.TSWORKFLOW_DIR;
      else process.env.TSWORKFLOW_DIR = previous;
    }
  });
});

describe("createRedisRuntime() options", () => {
  /** A stand-in Redis server that only counts the connections made to it. */
  let server: Server;
  let connections: number;
  let url: string;
  beforeEach(async () => {
    connections = 0;
    server = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `redis://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterEach(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each<[string, Record<string, unknown>, string]>([
    [
      "a concurrency of 0, which would run nothing",
      { concurrency: 0 },
      "createRedisRuntime(): concurrency must be an integer >= 1, got 0.",
    ],
    [
      "a misspelt option",
      { prefx: "app:" },
      'createRedisRuntime(): unknown option "prefx". The options are url, telemetry, concurrency, prefix, workerId, stalledAfterMs, clock, inlineSteps, schedules, registry, sweep.',
    ],
    [
      "a prefix that is no string",
      { prefix: 7 },
      'createRedisRuntime(): prefix must be a string, e.g. "tsw:", got 7.',
    ],
    [
      "an empty workerId",
      { workerId: "" },
      'createRedisRuntime(): workerId must be a name that is not empty, got "".',
    ],
    [
      "a stalledAfterMs of 0",
      { stalledAfterMs: 0 },
      "createRedisRuntime(): stalledAfterMs must be an integer >= 1, got 0.",
    ],
    [
      "an inlineSteps that is no boolean",
      { inlineSteps: "false" },
      'createRedisRuntime(): inlineSteps must be true or false, got "false".',
    ],
    [
      "a misspelt sweep option",
      { sweep: { staleAfter: 1000 } },
      'createRedisRuntime(): unknown option "sweep.staleAfter". The options are sweep.everyMs, sweep.staleAfterMs, sweep.limit.',
    ],
    ["a sweep every 0 ms", { sweep: { everyMs: 0 } }, "sweep.everyMs must be a whole number ≥ 1, got 0."],
    [
      "a sweep interval longer than a Node timer holds, which would sweep without a pause",
      { sweep: { everyMs: 2 ** 31 } },
      "createRedisRuntime(): sweep.everyMs must be at most 2147483647 ms (about 24.8 days, the longest a timer waits), got 2147483648.",
    ],
    [
      "a stalled-job check longer than a Node timer holds",
      { stalledAfterMs: 2 ** 31 },
      "createRedisRuntime(): stalledAfterMs must be at most 2147483647 ms (about 24.8 days, the longest a timer waits), got 2147483648.",
    ],
  ])("refuses %s before it connects", async (_case, options, message) => {
    expect(() => createRedisRuntime(untyped({ url, ...options }))).toThrow(new ConfigurationError(message));
    // A client made anyway would connect within a few milliseconds (and go on retrying).
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(connections).toBe(0);
  });

  it("refuses a missing url, naming it", () => {
    expect(() => createRedisRuntime(untyped({}))).toThrow(
      new ConfigurationError(
        'createRedisRuntime(): url must be a Redis URL, e.g. "redis://127.0.0.1:6379", got undefined.',
      ),
    );
  });
});

describe("createTestEnvironment() options", () => {
  it("refuses a step fake that is no function, which would fail every attempt of the step", async () => {
    step("call_options_faked", async (n: number) => n);
    await expect(createTestEnvironment(untyped({ steps: { call_options_faked: 5 } }))).rejects.toThrow(
      new ConfigurationError(
        'The fake of step "call_options_faked" must be a function that runs instead of the step, got 5.',
      ),
    );
  });

  it("refuses a misspelt timeSkipping, which would leave time skipping off", async () => {
    await expect(createTestEnvironment(untyped({ timeSkiping: true }))).rejects.toThrow(
      new ConfigurationError(
        'createTestEnvironment(): unknown option "timeSkiping". The options are timeSkipping, workflows, steps, storage, startAt, schedules, scheduleStore, replayCheck, maxSkippedTimers.',
      ),
    );
  });
});

describe("configureLogging() options", () => {
  it("refuses a misspelt option, which would leave the level as it was", () => {
    expect(() => configureLogging(untyped({ levle: "debug" }))).toThrow(
      new ConfigurationError(
        'configureLogging(): unknown option "levle". The options are level, logFile, jsonLogs, showContext.',
      ),
    );
  });
});

describe("configure() options", () => {
  it.each<[string, Record<string, unknown>, string]>([
    [
      "a misspelt option",
      { dri: "./x" },
      'configure(): unknown option "dri". The options are runtime, storage, dir, redis, concurrency, schedules.',
    ],
    [
      "dir beside storage, one of which would lose",
      { dir: "./x", storage: new MemoryStorage() },
      "configure(): give one of runtime, storage, dir and redis, not storage and dir: each says where runs live.",
    ],
    [
      "a redis URL that is not Redis's, which would fail only at the first call",
      { redis: "http://nope" },
      'configure({ redis }) takes a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379; got "http://nope".',
    ],
    ["a concurrency of 0", { concurrency: 0 }, "configure(): concurrency must be an integer >= 1, got 0."],
    ["an empty dir", { dir: "" }, 'configure(): dir must be a directory path, e.g. "./.tsworkflow", got "".'],
  ])("refuses %s at once", (_case, options, message) => {
    expect(() => configure(untyped(options))).toThrow(new ConfigurationError(message));
  });

  it("refuses a TSWORKFLOW_REDIS_URL that is not Redis's when the first call needs the runtime", async () => {
    const previous = process.env.TSWORKFLOW_REDIS_URL;
    process.env.TSWORKFLOW_REDIS_URL = "localhost:6379";
    try {
      await expect(listRuns()).rejects.toThrow(
        new ConfigurationError(
          'TSWORKFLOW_REDIS_URL takes a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379; got "localhost:6379".',
        ),
      );
    } finally {
      if (previous === undefined) delete process.env.TSWORKFLOW_REDIS_URL;
      else process.env.TSWORKFLOW_REDIS_URL = previous;
    }
  });
});

describe("start(), waitForRun() and listRuns() options", () => {
  it("refuses a misspelt idempotencyKey instead of starting a run without a key", async () => {
    // Prepare
    const storage = new MemoryStorage();
    configure({ storage });
    // Act
    const started = start(greet, ["ada"], untyped({ idempotencyKy: "order-1" }));
    // Assess
    await expect(started).rejects.toThrow(
      new ConfigurationError(
        'start(): unknown option "idempotencyKy". The options are idempotencyKey, tags.',
      ),
    );
    expect((await storage.listRuns()).runs).toEqual([]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      "a misspelt timeout, which would wait for ever",
      { timeout: 50 },
      'waitForRun(): unknown option "timeout". The options are timeoutMs, followContinuations.',
    ],
    [
      "a timeoutMs that is no number",
      { timeoutMs: "abc" },
      'waitForRun(): timeoutMs must be a number of milliseconds from 0 to 2147483647 (about 24.8 days), got "abc".',
    ],
    [
      "a negative timeoutMs",
      { timeoutMs: -1 },
      "waitForRun(): timeoutMs must be a number of milliseconds from 0 to 2147483647 (about 24.8 days), got -1.",
    ],
    [
      "a timeoutMs longer than a Node timer holds, which would time out at once",
      { timeoutMs: 2 ** 31 },
      "waitForRun(): timeoutMs must be a number of milliseconds from 0 to 2147483647 (about 24.8 days), got 2147483648.",
    ],
  ])("refuses %s in waitForRun", async (_case, options, message) => {
    configure({ storage: new MemoryStorage() });
    const runId = await start(waiting, []);
    await expect(waitForRun(runId, untyped(options))).rejects.toThrow(new ConfigurationError(message));
  });

  it("refuses the same in the runtime's own waitForRun", async () => {
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    try {
      const { runId } = await runtime.start(waiting, []);
      await expect(runtime.waitForRun(runId, untyped({ timeout: 50 }))).rejects.toThrow(
        'waitForRun(): unknown option "timeout"',
      );
      await expect(runtime.start(greet, ["ada"], untyped({ tag: { a: "b" } }))).rejects.toThrow(
        'start(): unknown option "tag"',
      );
    } finally {
      await runtime.close();
    }
  });

  it("refuses a misspelt idempotencyKey on the AWS client before it writes anything", async () => {
    const client = createClient(
      loadClientConfig({
        TSWORKFLOW_TABLE_NAME: "call-options",
        TSWORKFLOW_WORKFLOW_QUEUE_URL: "http://127.0.0.1:9/000000000000/workflows.fifo",
        AWS_REGION: "us-east-1",
      }),
    );
    try {
      await expect(client.start(greet, ["ada"], untyped({ idempotencyKy: "order-1" }))).rejects.toThrow(
        new ConfigurationError(
          'start(): unknown option "idempotencyKy". The options are idempotencyKey, tags.',
        ),
      );
    } finally {
      await client.close();
    }
  });

  it("refuses a misspelt listRuns filter, which would list every run", async () => {
    configure({ storage: new MemoryStorage() });
    await expect(listRuns(untyped({ workflow: "x" }))).rejects.toThrow(
      new ConfigurationError(
        'listRuns(): unknown option "workflow". The options are status, workflowName, tags, limit, cursor.',
      ),
    );
  });

  it("says plainly what a cancellation reason must be", async () => {
    configure({ storage: new MemoryStorage() });
    const runId = await start(waiting, []);
    await expect(cancelRun(runId, 5 as never)).rejects.toThrow(
      new ConfigurationError("Invalid cancellation reason 5: use 0 to 1000 characters."),
    );
  });
});

describe("waitForEvent() and createWebhook() options", () => {
  it("refuses a bad webhook timeout at createWebhook(), so no path that the log does not hold is handed out", async () => {
    // Prepare
    const hookPath = workflow("call_options_hook_path", async () => createWebhook({ timeout: "soon" }).path);
    const env = await createTestEnvironment();
    try {
      // Act
      const run = await env.start(hookPath, []);
      // Assess: the run fails at the call, and replays (the same failure again).
      await expect(run.result()).rejects.toThrow(InvalidDurationError);
      await expect(run.result()).rejects.toThrow('Invalid duration "soon"');
      expect((await run.events()).map((event) => event.type)).toEqual([
        "workflow_started",
        "workflow_failed",
      ]);
    } finally {
      await env.close();
    }
  });

  it.each<[string, () => unknown, string]>([
    [
      "a misspelt waitForEvent timeout, which would wait for ever",
      () => waitForEvent("approval", untyped({ timeot: "1d" })),
      'waitForEvent(): unknown option "timeot". The options are timeout, schema.',
    ],
    [
      "a waitForEvent schema that is no zod schema",
      () => waitForEvent("approval", untyped({ schema: { nope: 1 } })),
      'waitForEvent(): schema must be a zod schema, got {"nope":1}.',
    ],
    [
      "a webhook secret, which the server that receives it is given",
      () => createWebhook(untyped({ secret: 1 })),
      'createWebhook(): unknown option "secret". The options are timeout, schema.',
    ],
    [
      "a webhook schema that is no zod schema",
      () => createWebhook(untyped({ schema: 5 })),
      "createWebhook(): schema must be a zod schema, got 5.",
    ],
  ])("refuses %s", async (_case, call, message) => {
    const failing = workflow(`call_options_${message.length}`, async () => {
      await call();
    });
    const env = await createTestEnvironment();
    try {
      const run = await env.start(failing, []);
      // The run's error says it first (the test environment adds the run's timeline).
      await expect(run.result()).rejects.toMatchObject({ name: "ConfigurationError" });
      await expect(run.result()).rejects.toThrow(`${message}\n`);
    } finally {
      await env.close();
    }
  });
});
