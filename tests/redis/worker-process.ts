import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
/** The path of a module in tests/redis/fixtures, for a worker's `workflows`. */
export const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const fixtures = fixture("workflows.ts");

/** The lines a worker logged that contain `text`. */
export const linesOf = (worker: WorkerProcess, text: string) =>
  worker
    .output()
    .split("\n")
    .filter((line) => line.includes(text));

/**
 * A `tsworkflow worker` child process: `node --import tsx lib/runtimes/redis-worker.ts ...`, which is what
 * `npx tsx lib/runtimes/redis-worker.ts` runs, in one process instead of three (npm → tsx → node): it starts
 * in a third of the time and signals reach the worker itself.
 */
export interface WorkerProcess {
  readonly workerId: string;
  readonly child: ChildProcess;
  /** The pid the worker logged (the child's own). */
  readonly pid: number;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves with the exit code (or signal) once it has exited. */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code (or signal). */
  stop(): Promise<number | NodeJS.Signals>;
}

export interface WorkerProcessOptions {
  url: string;
  prefix: string;
  workerId: string;
  /** Directory the fixture steps coordinate through. */
  testDir: string;
  /** The workflows module it runs. @default fixtures/workflows.ts */
  workflows?: string;
  stalledAfterMs?: number;
  drainTimeoutMs?: number;
  concurrency?: number;
}

/** Starts a worker child process and waits until it logs that it started. */
export async function startWorkerProcess(options: WorkerProcessOptions): Promise<WorkerProcess> {
  const args = [
    "--import",
    "tsx",
    "lib/runtimes/redis-worker.ts",
    "--redis",
    options.url,
    "--workflows",
    options.workflows ?? fixtures,
    "--prefix",
    options.prefix,
    "--worker-id",
    options.workerId,
    "--concurrency",
    String(options.concurrency ?? 5),
    "--stalled-after-ms",
    String(options.stalledAfterMs ?? 30_000),
    "--drain-timeout-ms",
    String(options.drainTimeoutMs ?? 10_000),
  ];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, TSW_TEST_DIR: options.testDir, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? -1));
  });
  const started = `worker ${options.workerId} started`;
  const deadline = Date.now() + 20_000;
  let done = false;
  void exited.then(() => {
    done = true;
  });
  while (!output.includes(started)) {
    if (done || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`worker ${options.workerId} did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const pid = Number(/worker \S+ started.*?pid=(\d+)/.exec(output)?.[1]);
  if (!pid) {
    child.kill("SIGKILL");
    throw new Error(`worker ${options.workerId} did not log its pid:\n${output}`);
  }
  return {
    workerId: options.workerId,
    child,
    pid,
    output: () => output,
    exited,
    stop: async () => {
      if (done) return exited;
      process.kill(pid, "SIGTERM");
      const timer = setTimeout(() => {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
        child.kill("SIGKILL");
      }, 10_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** What {@link useWorkerProcesses} gives a test file. */
export interface WorkerProcesses {
  /** A runtime on the same Redis and prefix that only starts and reads runs (the workers run them). */
  readonly client: RedisRuntime;
  /** The directory the fixture steps coordinate through (`TSW_TEST_DIR` of the workers). */
  readonly testDir: string;
  /** Starts a worker child process, stopped after the file's tests. */
  start(
    workerId: string,
    options?: Omit<WorkerProcessOptions, "url" | "prefix" | "workerId" | "testDir">,
  ): Promise<WorkerProcess>;
}

/**
 * For a test file whose runs go to worker child processes: a redis-server, a directory for the fixture steps
 * and a client runtime before its tests; the client, the workers started and the server stopped after them.
 */
export function useWorkerProcesses(name: string): WorkerProcesses {
  const prefix = `tsw-${name}-${process.pid}:`;
  const workers: WorkerProcess[] = [];
  let server: RedisServer | undefined;
  let testDir: string | undefined;
  let client: RedisRuntime | undefined;
  beforeAll(async () => {
    server = await startRedisServer();
    testDir = mkdtempSync(join(tmpdir(), `tsw-redis-${name}-`));
    client = createRedisRuntime({ url: server.url, prefix });
  });
  afterAll(async () => {
    await client?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await server?.stop();
    if (testDir) rmSync(testDir, { recursive: true, force: true });
  });
  const ready = () => {
    if (!server || !testDir || !client) throw new Error("useWorkerProcesses: used outside the file's tests");
    return { url: server.url, testDir, client };
  };
  return {
    get client() {
      return ready().client;
    },
    get testDir() {
      return ready().testDir;
    },
    async start(workerId, options = {}) {
      const { url, testDir: dir } = ready();
      const worker = await startWorkerProcess({ url, prefix, workerId, testDir: dir, ...options });
      workers.push(worker);
      return worker;
    },
  };
}
