import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { PayloadRef } from "../adapters/aws/s3-payloads.ts";
import type { FileStorage } from "../adapters/file/file-storage.ts";
import { redactUrl, redisUrlProblem } from "../adapters/redis/redis-url.ts";
import { isHttpUrl } from "../aws/config.ts";
import { ConfigurationError, StorageLockedError, TsWorkflowError } from "../core/errors.ts";
import { importWorkflowsModule } from "../core/workflows-module.ts";
import type { Engine } from "../engine/engine.ts";
import { MemorySlotStore } from "../engine/memory-slot-store.ts";
import { retryRun } from "../engine/run-control.ts";
import { RunLimits, restoreRunSlots } from "../engine/run-limits.ts";
import { type SlotReader, waitingFor } from "../inspect/waiting-for.ts";
import { type EventStore, FINISHED_STATUSES } from "../ports/event-store.ts";
import type { FileControl } from "../runtimes/file-control.ts";
import { dynamoDBClient, loadAwsMode, loadRedisMode, s3ClientSettings } from "./backend-modules.ts";
import { BackendUnavailableError, UsageError } from "./errors.ts";

/** The storage flags shared by every command. */
export interface BackendOptions {
  /** File backend directory. @default `TSWORKFLOW_DIR` or `./.tsworkflow` */
  dir?: string;
  /** Redis URL. @default `TSWORKFLOW_REDIS_URL` when no other backend flag is given */
  redis?: string;
  /** Redis key prefix. @default "tsw:" */
  prefix?: string;
  /** DynamoDB table name. */
  table?: string;
  /** AWS region of the table. @default `AWS_REGION` or `AWS_DEFAULT_REGION` */
  region?: string;
  /** DynamoDB endpoint (DynamoDB Local, LocalStack). @default `TSWORKFLOW_DYNAMODB_ENDPOINT` */
  endpoint?: string;
  /**
   * S3 endpoint of the payload bucket (s3rver, LocalStack), where payloads over 64 KB are read from.
   * @default `TSWORKFLOW_S3_ENDPOINT`, else S3 in the table's region
   */
  s3Endpoint?: string;
}

/** Which storage a command talks to, resolved from its flags and the environment. */
export type Backend =
  | { kind: "file"; dir: string; label: string }
  | { kind: "redis"; url: string; prefix: string; label: string }
  | {
      kind: "dynamodb";
      table: string;
      region: string;
      endpoint?: string;
      s3Endpoint?: string;
      label: string;
    };

/**
 * What the dashboard and `runs cancel` / `runs retry` do to a run. Both write to the run's log, so they
 * need a store that can be written (and, on the file backend, the directory's lock).
 */
export interface RunActions {
  /** Stops an unfinished run: its steps and sleeps are not run again. */
  cancel(runId: string, reason?: string): Promise<void>;
  /**
   * A failed run goes on from its failed step. May resolve with a sentence saying who carries it on (the
   * dashboard shows it): `backendActions` says so where the run waits for an app that is not running.
   */
  retry(runId: string): Promise<void> | Promise<string>;
}

type Env = Record<string, string | undefined>;

/**
 * Picks the backend: `--redis`, `--table` or `--dir` when given (one of them), else `TSWORKFLOW_REDIS_URL`
 * (as the API does), else the file backend in `TSWORKFLOW_DIR` or `./.tsworkflow`.
 * @throws UsageError for flags that contradict each other or are incomplete
 */
export function resolveBackend(options: BackendOptions, env: Env = process.env): Backend {
  const chosen = [options.dir && "--dir", options.redis && "--redis", options.table && "--table"].filter(
    Boolean,
  );
  if (chosen.length > 1) throw new UsageError(`Choose one backend: ${chosen.join(" and ")} were both given.`);
  if (options.endpoint && !options.table)
    throw new UsageError("--endpoint is the DynamoDB endpoint: use it with --table NAME --region R.");
  if (options.s3Endpoint && !options.table)
    throw new UsageError(
      "--s3-endpoint is the endpoint of the payload bucket: use it with --table NAME --region R.",
    );
  if (options.table) {
    const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    if (!region)
      throw new UsageError("--table needs the table's region: pass --region R (or set AWS_REGION).");
    const endpoint = endpointOf(options.endpoint, "--endpoint", env, "TSWORKFLOW_DYNAMODB_ENDPOINT", 8000);
    const s3Endpoint = endpointOf(options.s3Endpoint, "--s3-endpoint", env, "TSWORKFLOW_S3_ENDPOINT", 4569);
    return {
      kind: "dynamodb",
      table: options.table,
      region,
      ...(endpoint ? { endpoint } : {}),
      ...(s3Endpoint ? { s3Endpoint } : {}),
      label: `DynamoDB table "${options.table}" in ${region}${endpoint ? ` at ${endpoint}` : ""}`,
    };
  }
  const redis =
    options.redis === undefined
      ? options.dir
        ? undefined
        : redisUrlOf(env.TSWORKFLOW_REDIS_URL || undefined, "TSWORKFLOW_REDIS_URL")
      : redisUrlOf(options.redis, "--redis");
  if (redis) {
    const prefix = options.prefix ?? "tsw:";
    return { kind: "redis", url: redis, prefix, label: `Redis at ${redactUrl(redis)} (prefix "${prefix}")` };
  }
  const dir = resolve(options.dir ?? (env.TSWORKFLOW_DIR || ".tsworkflow"));
  return { kind: "file", dir, label: `file backend in ${dir}` };
}

/**
 * A Redis URL given by `source` (the flag or the variable), checked here, so that every command, the worker
 * too, refuses a URL that is not Redis's as a usage error with the same message.
 * @throws UsageError unless it is a redis:// or rediss:// URL
 */
export function redisUrlOf(url: string | undefined, source: string): string | undefined {
  const problem = url === undefined ? undefined : redisUrlProblem(url, source);
  if (problem) throw new UsageError(problem);
  return url;
}

/**
 * The endpoint given by `flag`, else by the variable `name`, checked here: the AWS SDK would only fail at the
 * first request, with an error that names neither.
 * @throws UsageError unless it is an http:// or https:// URL
 */
function endpointOf(
  value: string | undefined,
  flag: string,
  env: Env,
  name: string,
  examplePort: number,
): string | undefined {
  const endpoint = value ?? (env[name] || undefined);
  if (endpoint !== undefined && !isHttpUrl(endpoint))
    throw new UsageError(
      `${value === undefined ? name : flag} takes an http:// or https:// URL, e.g. http://127.0.0.1:${examplePort}; got ${JSON.stringify(endpoint)}.`,
    );
  return endpoint;
}

/**
 * A backend's store opened for reading, with its concurrency slots where they live outside the app (Redis,
 * DynamoDB; the embedded runtime keeps them in the app's memory), which say what a pending run waits for.
 */
export type BackendReader = EventStore & { readonly slots?: SlotReader };

/** Who takes a backend's runs on, as "waiting for" sentences name it. */
export function runnerOf(backend: Backend): string {
  return backend.kind === "file" ? "an app" : backend.kind === "redis" ? "a worker" : "a deployment";
}

/**
 * Opens the backend for reading: the file backend without its lock, re-reading the files on every call
 * (so it works beside a running app). Errors of the storage are turned into messages naming it.
 * @throws BackendUnavailableError when the directory does not exist or a backend module cannot load
 */
export async function openReader(backend: Backend): Promise<BackendReader> {
  switch (backend.kind) {
    case "file": {
      assertFileData(backend);
      const { FileStorage } = await import("../adapters/file/file-storage.ts");
      return guard(new FileStorage({ dir: backend.dir, readOnly: true }), backend);
    }
    case "redis": {
      const { RedisStorage, RedisSlotStore } = await loadRedisMode();
      const store = new RedisStorage({ redis: backend.url, prefix: backend.prefix });
      return guard(store, backend, { slots: new RedisSlotStore(store.client, backend.prefix) });
    }
    case "dynamodb": {
      const { DynamoDBStorage, DynamoDBSlotStore } = await loadAwsMode();
      const client = await dynamoDBClient(backend);
      const payloads = await s3Payloads(backend);
      const store = new DynamoDBStorage({ client, tableName: backend.table, payloads });
      const slots = new DynamoDBSlotStore({ client, tableName: backend.table });
      return guard(store, backend, {
        slots,
        afterClose: async () => {
          client.destroy();
          await payloads.close();
        },
      });
    }
  }
}

/**
 * Checks that the file backend's directory holds an app's data: a directory that does not exist, or one with no
 * `runs/` nor schedules (the project's directory rather than its `.tsworkflow`, say), would read as one with no runs.
 * @throws BackendUnavailableError saying where to run the command, or which --dir to pass
 */
export function assertFileData({ dir }: Extract<Backend, { kind: "file" }>): void {
  if (["runs", "finished.jsonl", "schedules.json"].some((name) => existsSync(join(dir, name)))) return;
  const why = existsSync(dir)
    ? "the directory holds no runs/ (it is not where an app keeps its runs)"
    : "the directory does not exist";
  const nested = join(dir, ".tsworkflow");
  const guess = existsSync(join(nested, "runs")) ? ` Did you mean --dir ${nested}?` : "";
  throw new BackendUnavailableError(
    `No tsworkflow data in ${dir}: ${why}. Run the command where your app keeps its runs, or pass --dir <the directory your app keeps them in, ./.tsworkflow by default> (or set TSWORKFLOW_DIR).${guess}`,
  );
}

/** Options of {@link backendActions}. */
export interface BackendActionsOptions {
  /**
   * The module that defines (imports) the app's workflows. On the file backend with no app owning the
   * directory, the CLI then carries out the cancellation (the workflow's `finally` blocks), the retried
   * run or the run an event resumes itself, until it completes, fails or waits.
   */
  workflows?: string;
}

/**
 * Cancel and retry on the backend. On the file backend a request goes to the process that owns the
 * directory through its inbox (stored durably, applied there within about 100 ms); with no owner it is
 * stored for the next one, or, with `workflows`, carried out here. On Redis and AWS the workers (or
 * Lambda functions) carry the run on.
 */
export function backendActions(backend: Backend, options: BackendActionsOptions = {}): RunActions {
  if (backend.kind === "file") {
    const here = async () => options.workflows !== undefined && !(await fileOwner(backend));
    return {
      async cancel(runId, reason) {
        if (await here()) {
          await withEngine(backend, "cancel", options.workflows, runId, (engine) =>
            engine.cancelRun(runId, reason),
          );
          return;
        }
        await withControl(backend, async (control) => {
          await control.cancelRun(runId, reason);
          if (control.owner()) await waitForCancellation(control, runId);
        });
      },
      async retry(runId) {
        if (await here()) {
          await withEngine(backend, "retry", options.workflows, runId, (engine) => retryRun(engine, runId));
          const slot = await withControl(backend, (control) => slotWaitOf(control, runId));
          return `It waits${slot ? ` for ${slot}` : " now"}; your app carries it on when it next starts on ${backend.dir}.`;
        }
        await withControl(backend, (control) => control.retryRun(runId));
        const [owner, slot] = await withControl(backend, async (control) => [
          control.owner(),
          await slotWaitOf(control, runId),
        ]);
        if (owner)
          return slot
            ? `It waits for ${slot}: your app (${owner}) goes on with it from its failed step once it has one.`
            : `Your app (${owner}) goes on with it from its failed step.`;
        return slot
          ? `When your app next starts on ${backend.dir}, it waits for ${slot}, then goes on from its failed step (or pass --workflows to run it here if it can have its slot now).`
          : `It goes on from its failed step when your app next starts on ${backend.dir} (or pass --workflows to run it here now).`;
      },
    };
  }
  return {
    cancel: (runId, reason) =>
      withEngine(backend, "cancel", undefined, runId, (engine) => engine.cancelRun(runId, reason)),
    async retry(runId) {
      const slot = await withEngine(backend, "retry", undefined, runId, async (engine) => {
        await retryRun(engine, runId);
        return slotWaitOf(engine.store, runId);
      });
      return slot
        ? `It waits for ${slot}: a worker goes on with it from its failed step once it has one.`
        : "A worker picks it up and goes on from its failed step.";
    },
  };
}

/**
 * The concurrency slot a retried run waits for, when it is pending: a retry puts a run of a limited workflow
 * back in line (see `retryRun`).
 */
async function slotWaitOf(
  store: Pick<EventStore, "getRun" | "getEvents">,
  runId: string,
): Promise<string | undefined> {
  const run = await store.getRun(runId);
  if (run?.status !== "pending") return undefined;
  return waitingFor(run, await store.getEvents(runId)).join(" and ");
}

/** What `POST /hooks/<token>` and `runs send-event` call to deliver an event: `sendEvent` on the backend. */
export type SendEvent = (
  runId: string,
  eventName: string,
  payload: unknown,
  options: { signalId?: string },
) => Promise<{ delivered: boolean }>;

/**
 * Delivers events to runs on the backend, like {@link backendActions}: on the file backend through the
 * owning process's inbox (concurrent calls never contend for the directory), or here with `workflows`
 * when no process owns it.
 */
export function backendSendEvent(backend: Backend, options: BackendActionsOptions = {}): SendEvent {
  return async (runId, eventName, payload, sendOptions) => {
    if (backend.kind === "file" && !(options.workflows !== undefined && !(await fileOwner(backend))))
      return withControl(backend, (control) => control.sendEvent(runId, eventName, payload, sendOptions));
    return withEngine(backend, "deliver events to", options.workflows, runId, (engine) =>
      engine.sendEvent(runId, eventName, payload, sendOptions),
    );
  };
}

/** The process that owns a file backend's directory (described), or undefined when none does. */
export function fileOwner(backend: Extract<Backend, { kind: "file" }>): Promise<string | undefined> {
  return withControl(backend, async (control) => control.owner());
}

async function withControl<T>(
  backend: Extract<Backend, { kind: "file" }>,
  act: (control: FileControl) => Promise<T>,
): Promise<T> {
  assertFileData(backend);
  const { FileControl } = await import("../runtimes/file-control.ts");
  const control = new FileControl({ dir: backend.dir });
  try {
    return await act(control);
  } finally {
    await control.close();
  }
}

/** The owner applies a cancellation within about 100 ms; its clean-up may take longer: wait a little. */
async function waitForCancellation(control: FileControl, runId: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const run = await control.getRun(runId);
    if (!run || FINISHED_STATUSES.has(run.status)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Cancel and retry with an engine you already have (e.g. your app's runtime's). */
export function engineActions(engine: Engine): RunActions {
  return {
    cancel: (runId, reason) => engine.cancelRun(runId, reason),
    retry: (runId) => retryRun(engine, runId),
  };
}

const loadedWorkflows = new Map<string, Promise<void>>();

/**
 * Imports the app's workflows module once, so that this process can run their code.
 * @throws UsageError when the file does not exist or registers no workflow
 */
export function loadWorkflows(file: string): Promise<void> {
  const path = resolve(file);
  let loading = loadedWorkflows.get(path);
  if (!loading) {
    loading = (async () => {
      if (!existsSync(path))
        throw new UsageError(
          `--workflows ${file}: ${path} does not exist. Pass the module that defines your workflows.`,
        );
      await importWorkflowsModule(path);
      const { registeredWorkflows } = await import("../core/registry.ts");
      if (registeredWorkflows().length === 0)
        throw new UsageError(
          `--workflows ${file}: ${path} registered no workflow. It must define workflows with workflow("name", fn), or import the modules that do.`,
        );
    })();
    loadedWorkflows.set(path, loading);
  }
  return loading;
}

async function withEngine<T>(
  backend: Backend,
  verb: "cancel" | "retry" | "deliver events to",
  workflows: string | undefined,
  runId: string | undefined,
  act: (engine: Engine) => Promise<T>,
): Promise<T> {
  if (workflows) await loadWorkflows(workflows);
  switch (backend.kind) {
    case "file": {
      // One writer per directory: calls of this process (concurrent webhooks) take their turn.
      const previous = fileTurns.get(backend.dir) ?? Promise.resolve();
      let done: () => void = () => {};
      const turn = new Promise<void>((resolve) => {
        done = resolve;
      });
      fileTurns.set(backend.dir, turn);
      await previous;
      try {
        return await withFileEngine(backend, verb, workflows, runId, act);
      } finally {
        if (fileTurns.get(backend.dir) === turn) fileTurns.delete(backend.dir);
        done();
      }
    }
    case "redis": {
      const { createRedisRuntime } = await loadRedisMode();
      const runtime = createRedisRuntime({ url: backend.url, prefix: backend.prefix });
      try {
        return await guardCall(backend, () => act(runtime.engine));
      } finally {
        await runtime.close().catch(() => {});
      }
    }
    case "dynamodb": {
      const { loadConfig, createAwsRuntime, DynamoDBSlotStore, DynamoDBStorage } = await loadAwsMode();
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig({
          ...process.env,
          TSWORKFLOW_TABLE_NAME: backend.table,
          AWS_REGION: backend.region,
          ...(backend.endpoint ? { TSWORKFLOW_DYNAMODB_ENDPOINT: backend.endpoint } : {}),
          ...(backend.s3Endpoint ? { TSWORKFLOW_S3_ENDPOINT: backend.s3Endpoint } : {}),
        });
      } catch (error) {
        if (!(error instanceof ConfigurationError)) throw error;
        throw new UsageError(
          `To ${verb} runs on AWS the CLI sends messages to your deployment's queues, so it needs their settings in the environment. ${error.message}`,
        );
      }
      // The runtime's store, with payloads whose failures name S3 rather than the table.
      const client = await dynamoDBClient(backend);
      const payloads = await s3Payloads(backend, config.payloadBucket);
      const store = new DynamoDBStorage({
        client,
        tableName: config.tableName,
        ttlDays: config.ttlDays,
        payloads,
      });
      // A retried run of a limited workflow takes its place in line for a slot in the kit's table (the
      // deployment's functions have the same `runLimits`, or it could not have been started).
      const runLimits = new RunLimits({
        slots: new DynamoDBSlotStore({ client, tableName: config.tableName }),
      });
      const runtime = createAwsRuntime(config, { store, runLimits });
      try {
        return await guardCall(backend, () => act(runtime.engine));
      } finally {
        for (const runtimeClient of [client, ...Object.values(runtime.clients)]) runtimeClient.destroy();
        await payloads.close();
      }
    }
  }
}

const fileTurns = new Map<string, Promise<void>>();

/** Takes the directory for a moment and acts with an engine on it (the workflows' code runs here). */
async function withFileEngine<T>(
  backend: Extract<Backend, { kind: "file" }>,
  verb: "cancel" | "retry" | "deliver events to",
  workflows: string | undefined,
  runId: string | undefined,
  act: (engine: Engine) => Promise<T>,
): Promise<T> {
  const { LocalRuntime } = await import("../runtimes/embedded.ts");
  const storage = await takeDirectory(
    backend,
    (error) =>
      `Cannot ${verb} the run here: ${error.message.replace(/^The directory/, "the directory")} Run the command again: with an app owning the directory, the request goes to it.`,
  );
  // Without the app's workflows a retried run goes on when the app next starts here; with them, it
  // goes on in this process until it completes, fails or waits.
  const slots = new MemorySlotStore();
  const runtime = new LocalRuntime({ storage, slots, recover: false });
  try {
    if (workflows && runId) await assertDefinesWorkflowOf(storage, runId, workflows);
    // The runs of the directory hold their concurrency slots here as in the app (taken back from the log, as
    // the app does when it starts): a retried run takes its place in line behind them, and a pending run
    // that an event or a cancellation activates stays in line instead of taking a slot that looks free.
    await restoreRunSlots(storage, slots, runtime.clock);
    const value = await act(runtime.engine);
    await runtime.idle();
    return value;
  } finally {
    await runtime.close();
  }
}

/**
 * Opens the file backend's directory as its owner (the command acts as an app would), or throws
 * `BackendUnavailableError` saying `held(error)` when an app owns it.
 */
export async function takeDirectory(
  backend: Extract<Backend, { kind: "file" }>,
  held: (error: StorageLockedError) => string,
): Promise<FileStorage> {
  const { FileStorage } = await import("../adapters/file/file-storage.ts");
  assertFileData(backend);
  try {
    return new FileStorage({ dir: backend.dir });
  } catch (error) {
    if (error instanceof StorageLockedError) throw new BackendUnavailableError(held(error), { cause: error });
    throw error;
  }
}

/**
 * On the file backend the run goes on in this process: without its workflow's code it would stop at once
 * (and a cancellation would be lost with the process), so say which module to pass instead.
 */
async function assertDefinesWorkflowOf(store: EventStore, runId: string, workflows: string): Promise<void> {
  const run = await store.getRun(runId);
  if (!run) return;
  const { findWorkflow } = await import("../core/registry.ts");
  if (!findWorkflow(run.workflowName))
    throw new UsageError(
      `--workflows ${workflows} does not define the workflow "${run.workflowName}" of run ${runId}: pass the module that defines it (or imports it).`,
    );
}

/**
 * The S3 payloads of runs on DynamoDB (values over 64 KB, read through the references in the table; written
 * to `bucket`, if given, for an event's payload): a failure says it is S3's, and which bucket.
 */
async function s3Payloads(backend: Extract<Backend, { kind: "dynamodb" }>, bucket?: string) {
  const { S3Payloads } = await loadAwsMode();
  const where = backend.s3Endpoint ? `at ${backend.s3Endpoint}` : `in ${backend.region}`;
  const guarded = async <T>(runId: string, bucketName: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      if (error instanceof TsWorkflowError) throw error;
      throw new BackendUnavailableError(
        `Cannot use the S3 bucket "${bucketName}" ${where} (a payload of run ${runId}): ${describeFailure(error)}. Check the bucket, the S3 endpoint (--s3-endpoint or TSWORKFLOW_S3_ENDPOINT) and your AWS credentials.`,
        { cause: error },
      );
    }
  };
  class GuardedPayloads extends S3Payloads {
    override get(runId: string, ref: PayloadRef): Promise<string> {
      return guarded(runId, ref.bucket, () => super.get(runId, ref));
    }
    override put(runId: string, json: string): Promise<PayloadRef> {
      return guarded(runId, this.bucket ?? "", () => super.put(runId, json));
    }
  }
  return new GuardedPayloads({ clientConfig: s3ClientSettings(backend), ...(bucket ? { bucket } : {}) });
}

/** Wraps every method of `store` so that a storage failure says which storage failed. */
function guard(
  store: EventStore,
  backend: Backend,
  { slots, afterClose }: { slots?: SlotReader; afterClose?: () => Promise<void> } = {},
): BackendReader {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === "slots") return slots;
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        if (property === "close") {
          try {
            return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } finally {
            await afterClose?.();
          }
        }
        return guardCall(backend, () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      };
    },
  });
}

async function guardCall<T>(backend: Backend, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof TsWorkflowError) throw error;
    throw new BackendUnavailableError(
      `Cannot use the ${backend.label}: ${describeFailure(error)}${hint(backend)}`,
      {
        cause: error,
      },
    );
  }
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const name = error.name && error.name !== "Error" ? `${error.name}: ` : "";
  const code = (error as { code?: unknown }).code;
  return `${name}${error.message || String(code ?? "unknown error")}`;
}

function hint(backend: Backend): string {
  switch (backend.kind) {
    case "dynamodb":
      return ". Check the table name, the region, the endpoint and your AWS credentials.";
    case "redis":
      return ". Check that redis-server is running at that address.";
    case "file":
      return ".";
  }
}
