import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, watch } from "node:fs";
import { dirname, extname, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { FileControl } from "../../runtimes/file-control.ts";
import type { Backend } from "../backend.ts";
import { serveDashboard } from "../dashboard/server.ts";
import { BackendUnavailableError, EXIT, UsageError } from "../errors.ts";
import type { Output } from "../runs.ts";

/** Options of `tsworkflow dev`. */
export interface DevCommandOptions {
  port: number;
  host: string;
  token: string | undefined;
  context: Output;
  /** How often new runs are looked for, to print their links. @default 300 */
  pollMs?: number;
  /** Fire the schedules the module exports (`--no-schedules`: none). @default true */
  schedules?: boolean;
}

/** Source files whose change restarts the worker. */
const SOURCES = new Set([".ts", ".mts", ".cts", ".tsx", ".js", ".mjs", ".cjs", ".json"]);

/**
 * `tsworkflow dev <module>`: runs the workflows module on the embedded file backend in a worker
 * process (which fires the schedules the module exports), serves the dashboard (actions and webhooks on) beside it, prints a link to each run that
 * starts, and restarts the worker when a source file next to the module changes: the new worker
 * resumes every unfinished run from its log. Runs until SIGINT or SIGTERM.
 */
export async function runDevCommand(
  file: string,
  backend: Backend,
  options: DevCommandOptions,
): Promise<number> {
  const { context } = options;
  const { style } = context;
  if (backend.kind !== "file")
    throw new UsageError(
      "tsworkflow dev runs your workflows on the embedded file backend: use --dir, not --redis or --table.",
    );
  const module = resolve(file);
  if (!existsSync(module))
    throw new UsageError(
      `tsworkflow dev ${file}: ${module} does not exist. Pass the module that defines your workflows.`,
    );
  mkdirSync(backend.dir, { recursive: true });
  // Listened to from the start: a Ctrl-C while the worker starts stops it too, once it is up.
  const stopped = new Promise<NodeJS.Signals>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });

  const control = new FileControl({ dir: backend.dir });
  // Runs from before are not announced; those the module starts are.
  const seen = new Set((await control.listRuns({ limit: 1000 })).runs.map((run) => run.runId));
  const worker = new DevWorker(module, backend.dir, context, options.schedules ?? true);
  await worker.start();
  let dashboard: Awaited<ReturnType<typeof serveDashboard>>;
  try {
    dashboard = await serveDashboard({
      storage: control,
      label: `tsworkflow dev: ${relative(process.cwd(), module) || module} on ${backend.dir}`,
      allowActions: true,
      actions: {
        cancel: (runId, reason) => control.cancelRun(runId, reason),
        retry: (runId) => control.retryRun(runId),
      },
      webhooks: {
        sendEvent: (runId, name, payload, signal) => control.sendEvent(runId, name, payload, signal),
      },
      ...(options.token ? { token: options.token } : {}),
      port: options.port,
      host: options.host,
    });
  } catch (error) {
    await worker.stop();
    await control.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE")
      throw new BackendUnavailableError(
        `Port ${options.port} on ${options.host} is already in use: pass another --port (or --port 0 for any free port).`,
      );
    throw error;
  }
  const link = (path: string) =>
    `${dashboard.url}${path.replace(/^\//, "")}${options.token ? `?token=${encodeURIComponent(options.token)}` : ""}`;
  context.out(`tsworkflow dev: ${style.bold(module)} on ${backend.dir}\n`);
  context.out(`dashboard ${style.bold(link("/"))}\n`);
  context.out(
    `${style.dim(`webhooks: POST ${dashboard.url}hooks/<token>. Editing a file next to the module restarts the worker; runs go on. Ctrl-C stops.`)}\n`,
  );

  const lookForRuns = setInterval(() => {
    void control
      .listRuns({ limit: 100 })
      .then(({ runs }) => {
        for (const run of [...runs].reverse()) {
          if (seen.has(run.runId)) continue;
          seen.add(run.runId);
          context.out(
            `run ${style.bold(run.runId)} (${run.workflowName}) started: ${link(`/runs/${run.runId}`)}\n`,
          );
        }
      })
      .catch(() => {});
  }, options.pollMs ?? 300);

  const stopWatching = watchSources(dirname(module), backend.dir, (changed) => {
    context.out(
      `${style.dim(`${relative(process.cwd(), changed) || changed} changed: restarting the worker`)}\n`,
    );
    void worker.restart();
  });

  const signal = await stopped;
  context.out(`${style.dim(`${signal}: stopping.`)}\n`);
  clearInterval(lookForRuns);
  stopWatching();
  await worker.stop();
  await dashboard.close();
  await control.close();
  return EXIT.ok;
}

/** Calls `changed` (debounced) when a source file under `root` changes, outside the data directory and node_modules. */
function watchSources(root: string, dataDir: string, changed: (path: string) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(root, { recursive: true, persistent: false }, (_event, name) => {
    if (!name) return;
    const path = resolve(root, name.toString());
    if (!SOURCES.has(extname(path))) return;
    if (path.startsWith(dataDir + sep) || path.split(sep).includes("node_modules")) return;
    clearTimeout(timer);
    timer = setTimeout(() => changed(path), 150);
  });
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}

/** The worker process: started, stopped (SIGTERM, then SIGKILL after 3 s) and started again. */
class DevWorker {
  private child: ChildProcess | undefined;
  private restarting: Promise<void> = Promise.resolve();

  constructor(
    private readonly module: string,
    private readonly dir: string,
    private readonly context: Output,
    private readonly schedules: boolean,
  ) {}

  start(): Promise<void> {
    const entry = fileURLToPath(
      new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
    );
    // From the repository's sources the worker itself is TypeScript; compiled, it needs no loader (a
    // TypeScript workflows module gets tsx from importWorkflowsModule, only then).
    const loader = entry.endsWith(".ts") ? ["--import", import.meta.resolve("tsx")] : [];
    const args = [entry, this.module, this.dir, ...(this.schedules ? [] : ["--no-schedules"])];
    // stdin stays open: the worker stops when it closes, this process gone.
    const child = spawn(process.execPath, [...loader, ...args], { stdio: ["pipe", "pipe", "inherit"] });
    this.child = child;
    return new Promise((done) => {
      let buffered = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) {
          const message = parse(line);
          if (!message) {
            this.context.out(`${line}\n`);
            continue;
          }
          if (message.event === "ready") {
            const schedules = message.schedules as string[];
            const firing = schedules.length > 0 ? `, firing schedules ${schedules.join(", ")}` : "";
            this.context.out(`${this.context.style.dim(`worker ${String(message.pid)} ready${firing}`)}\n`);
            done();
          }
          if (message.event === "configure-ignored") {
            this.context.err(
              `${this.context.errStyle.yellow("warning:")} ${this.module} called configure(): tsworkflow dev ignored it and runs your workflows on its own embedded runtime (the file backend in ${this.dir}). Call configure() where your app starts, not in the module that defines your workflows, to silence this.\n`,
            );
          }
          if (message.event === "failed") {
            this.context.err(
              `${this.context.errStyle.red("error:")} the workflows module failed to load; fix it and save to try again.\n${String(message.message)}\n`,
            );
          }
        }
      });
      child.once("exit", () => done());
    });
  }

  restart(): Promise<void> {
    this.restarting = this.restarting.then(async () => {
      await this.stop();
      await this.start();
    });
    return this.restarting;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once("exit", done));
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(killer);
  }
}

function parse(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
