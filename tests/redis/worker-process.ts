import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const fixtures = fileURLToPath(new URL("./fixtures/workflows.ts", import.meta.url));

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
    fixtures,
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
