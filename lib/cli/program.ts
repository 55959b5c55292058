import { createRequire } from "node:module";
import { Command, InvalidArgumentError, Option } from "commander";
import { configureLogging } from "../core/logger.ts";
import { importOptional } from "../core/optional-dependency.ts";
import { type RunTags, validateTags } from "../core/tags.ts";
import { RUN_STATUSES, type RunQuery, type RunStatus } from "../ports/event-store.ts";
import {
  type Backend,
  type BackendOptions,
  type BackendReader,
  backendActions,
  backendSendEvent,
  openReader,
  redisUrlOf,
  resolveBackend,
  runnerOf,
} from "./backend.ts";
import { dashboardPackages } from "./dashboard/packages.ts";
import { EXIT, UsageError } from "./errors.ts";
import { repairCommand } from "./repair.ts";
import { replayCommand } from "./replay.ts";
import {
  cancelCommand,
  eventsCommand,
  listCommand,
  type Output,
  retryCommand,
  sendEventCommand,
  showCommand,
  type WaitSources,
} from "./runs.ts";
import {
  changeScheduleCommand,
  listSchedulesCommand,
  type OpenedSchedules,
  openSchedules,
} from "./schedules.ts";

const WORKFLOWS_HELP =
  "the module that defines your workflows: on the file backend with no app running, their code runs here (cancellation, retried steps)";

/** The dashboard's default port. */
export const DEFAULT_PORT = 4300;

/** What the process running the CLI provides. */
export interface CliContext extends Output {
  env: Record<string, string | undefined>;
}

interface GlobalOptions extends BackendOptions {}

/** A flag's whole number, from `min` up (a number that is not whole, or is below, exits 2 naming the flag). */
function wholeNumber(name: string, min: 0 | 1) {
  return (value: string) => {
    const number = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < min)
      throw new InvalidArgumentError(`${name} must be a whole number ≥ ${min}.`);
    return number;
  };
}

/** `--status running,suspended`: statuses a command selects. */
function statusList(value: string): RunStatus[] {
  const statuses = value.split(",").map((status) => status.trim());
  const unknown = statuses.filter((status) => !RUN_STATUSES.includes(status as RunStatus));
  if (unknown.length > 0)
    throw new InvalidArgumentError(`unknown status ${unknown.join(", ")}: use ${RUN_STATUSES.join(", ")}.`);
  return statuses as RunStatus[];
}

/** `--tag key=value`, repeatable: collects the tags, checked as `start()` checks them. */
function tagOption(value: string, previous: RunTags): RunTags {
  const at = value.indexOf("=");
  if (at <= 0)
    throw new InvalidArgumentError(
      `--tag takes key=value, e.g. --tag tenant=acme (got ${JSON.stringify(value)}).`,
    );
  const tags = { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
  try {
    return validateTags(tags, "--tag");
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function port(value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || number > 65_535) throw new InvalidArgumentError("the port must be 0 to 65535.");
  return number;
}

/** The installed package's version, found by the package's own name (as it is installed, or this repository). */
function packageVersion(): string {
  return (createRequire(import.meta.url)("tsworkflow/package.json") as { version: string }).version;
}

/**
 * The `tsworkflow` command line. `run` receives each command's exit code.
 * @example
 * const program = createProgram(context, (code) => { process.exitCode = code; });
 * await program.parseAsync(["runs", "list"], { from: "user" });
 */
export function createProgram(context: CliContext, setExitCode: (code: number) => void): Command {
  const program = new Command("tsworkflow");
  program
    .description(
      "Look at and act on tsworkflow runs, run Redis workers, and serve the web dashboard.\n" +
        "Runs are read from the file backend in ./.tsworkflow unless --dir, --redis or --table says otherwise.",
    )
    .version(packageVersion(), "-V, --version")
    .option("--dir <path>", "file backend directory (default: $TSWORKFLOW_DIR or ./.tsworkflow)")
    .option("--redis <url>", "Redis backend, e.g. redis://127.0.0.1:6379 (default: $TSWORKFLOW_REDIS_URL)")
    .option("--prefix <prefix>", 'Redis key prefix (default: "tsw:")')
    .option("--table <name>", "DynamoDB backend: the table name")
    .option("--region <region>", "the DynamoDB table's region (default: $AWS_REGION)")
    .option("--endpoint <url>", "DynamoDB endpoint, for DynamoDB Local or LocalStack")
    .option(
      "--s3-endpoint <url>",
      "S3 endpoint of the payload bucket, for s3rver or LocalStack (default: $TSWORKFLOW_S3_ENDPOINT)",
    )
    .configureOutput({
      writeOut: (text) => context.out(text),
      writeErr: (text) => context.err(text),
      outputError: (text, write) => write(context.errStyle.red(text)),
    })
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  const backendOf = (command: Command) =>
    resolveBackend(command.optsWithGlobals<GlobalOptions>(), context.env);
  const quiet = () => configureLogging({ level: "error" });
  /** Who takes the backend's runs on, and its slots where the CLI can read them. */
  const waitSources = (store: BackendReader, command: Command): WaitSources => ({
    runner: runnerOf(backendOf(command)),
    ...(store.slots ? { slots: store.slots } : {}),
  });

  /** Reads with a read-only store and closes it, whatever happens. */
  const reading =
    <A extends unknown[]>(
      handler: (store: Awaited<ReturnType<typeof openReader>>, ...args: A) => Promise<number>,
    ) =>
    async (...args: A) => {
      quiet();
      const command = args[args.length - 1] as Command;
      const store = await openReader(backendOf(command));
      try {
        setExitCode(await handler(store, ...args));
      } finally {
        await store.close().catch(() => {});
      }
    };

  const runs = program
    .command("runs")
    .description("list runs, show one, print its events, cancel or retry it");

  runs
    .command("list")
    .description("list runs, newest first")
    .addOption(new Option("--status <status>", "only runs with this status").choices(RUN_STATUSES))
    .option("--workflow <name>", "only runs of this workflow")
    .option("--workflow-version <version>", "only runs started with this version of their workflow's code")
    .option(
      "--tag <key=value>",
      "only runs with this tag (repeat for several: all must match)",
      tagOption,
      {},
    )
    .option("--limit <n>", "runs per page (default: 100)", wholeNumber("--limit", 1))
    .option("--cursor <cursor>", "the page after the one that printed this cursor (same filters)")
    .option("--json", 'print the page as JSON: { "runs": [...], "nextCursor": "..." }')
    .addHelpText(
      "after",
      "\nExamples:\n  tsworkflow runs list\n  tsworkflow runs list --status failed --workflow onboarding --limit 20\n  tsworkflow runs list --tag tenant=acme --tag plan=pro\n  tsworkflow runs list --workflow onboarding --workflow-version 1\n  tsworkflow runs list --limit 20 --cursor <the cursor the previous page printed>\n  tsworkflow runs list --json | jq -r '.runs[].runId'",
    )
    .action(
      reading(
        async (
          store,
          options: {
            status?: RunStatus;
            workflow?: string;
            workflowVersion?: string;
            tag: RunTags;
            limit?: number;
            cursor?: string;
            json?: boolean;
          },
          command: Command,
        ) => {
          const query: RunQuery = {
            ...(options.status ? { status: options.status } : {}),
            ...(options.workflow ? { workflowName: options.workflow } : {}),
            ...(Object.keys(options.tag).length > 0 ? { tags: options.tag } : {}),
            ...(options.limit ? { limit: options.limit } : {}),
            ...(options.cursor ? { cursor: options.cursor } : {}),
          };
          return listCommand(
            store,
            query,
            { ...options, version: options.workflowVersion },
            context,
            waitSources(store, command),
          );
        },
      ),
    );

  program
    .command("replay")
    .description("replay recorded runs against your current code, running nothing; exit 1 on any mismatch")
    .requiredOption("--workflows <file>", "the module that defines your workflows as the new code has them")
    .option("--run <id>", "only this run")
    .option("--workflow <name>", "only runs of this workflow")
    .option(
      "--status <statuses>",
      "only runs with these statuses, comma-separated (e.g. running,suspended)",
      statusList,
    )
    .option(
      "--limit <n>",
      "at most this many runs (default: every matching run; the summary says when more matched)",
      wholeNumber("--limit", 1),
    )
    .option("--json", "print the reports as JSON")
    .addHelpText(
      "after",
      "\nRun it in CI before a deploy, against a copy or a sample of the live runs:\n  tsworkflow replay --workflows ./dist/workflows.js --status running,suspended\n  tsworkflow replay --workflows ./src/workflows.ts --run run_0abc --redis redis://127.0.0.1:6379",
    )
    .action(
      reading(
        async (
          store,
          options: {
            workflows: string;
            run?: string;
            workflow?: string;
            status?: RunStatus[];
            limit?: number;
            json?: boolean;
          },
        ) =>
          replayCommand(
            store,
            {
              workflows: options.workflows,
              ...(options.run ? { run: options.run } : {}),
              ...(options.workflow ? { workflow: options.workflow } : {}),
              ...(options.status ? { statuses: options.status } : {}),
              ...(options.limit ? { limit: options.limit } : {}),
              ...(options.json ? { json: true } : {}),
            },
            context,
          ),
      ),
    );

  runs
    .command("show")
    .description("show a run: status, input, result or error, steps and sleeps (exits 1 if it failed)")
    .argument("<id>", "the run id")
    .option("--json", "print the run document as JSON")
    .option("--all", "print every row of a long timeline (by default the first and last 50)")
    .action(
      reading((store, id: string, options: { json?: boolean; all?: boolean }, command: Command) =>
        showCommand(store, id, options, context, waitSources(store, command)),
      ),
    );

  runs
    .command("events")
    .description("print a run's event log")
    .argument("<id>", "the run id")
    .option("--json", "print the events as JSON (the whole log, unless --after or --limit)")
    .option("--all", "print every event of a long log (by default the first and last 50)")
    .option("--after <seq>", "only the events after this seq", wholeNumber("--after", 0))
    .option("--limit <n>", "at most this many events (all of them printed)", wholeNumber("--limit", 0))
    .addHelpText(
      "after",
      "\nExamples:\n  tsworkflow runs events run_0abc\n  tsworkflow runs events run_0abc --after 200 --limit 100\n  tsworkflow runs events run_0abc --json > history.json    # the whole log, for replayHistory()",
    )
    .action(
      reading(
        (store, id: string, options: { json?: boolean; all?: boolean; after?: number; limit?: number }) =>
          eventsCommand(store, id, options, context),
      ),
    );

  runs
    .command("cancel")
    .description("cancel a pending, running or suspended run")
    .argument("<id>", "the run id")
    .option("--reason <text>", "why, recorded in the run's log")
    .option("--workflows <file>", WORKFLOWS_HELP)
    .addHelpText(
      "after",
      '\nOn the file backend the app that owns the directory carries the cancellation out (no --workflows needed);\nwith no app running it is stored for the next one, or run here with --workflows.\n\nExamples:\n  tsworkflow runs cancel run_0abc --reason "duplicate order"\n  tsworkflow runs cancel run_0abc --redis redis://127.0.0.1:6379',
    )
    .action(
      reading(
        async (store, id: string, options: { reason?: string; workflows?: string }, command: Command) => {
          const backend = backendOf(command);
          const actions = backendActions(backend, options.workflows ? { workflows: options.workflows } : {});
          return cancelCommand(store, actions, backend, id, options.reason, context);
        },
      ),
    );

  runs
    .command("retry")
    .description("make a failed run go on from its failed step")
    .argument("<id>", "the run id")
    .option("--workflows <file>", WORKFLOWS_HELP)
    .action(
      reading(async (store, id: string, options: { workflows?: string }, command: Command) => {
        const backend = backendOf(command);
        const actions = backendActions(backend, options.workflows ? { workflows: options.workflows } : {});
        return retryCommand(store, actions, id, context);
      }),
    );

  runs
    .command("repair")
    .description(
      "cut a damaged run file before its first damaged line, keeping a copy (file backend, app stopped)",
    )
    .argument("<id>", "the run id")
    .addHelpText(
      "after",
      "\nThe run goes on from its last kept commit at the app's next start; the steps recorded in the lines cut off\nrun again. The file as it was is kept in <dir>/damaged/. With its first line damaged, nothing can be kept:\nthe file is moved there and the run's idempotency key is free again.\n\nExample:\n  tsworkflow runs repair run_0abc --dir ./.tsworkflow",
    )
    .action(async (id: string, _options: unknown, command: Command) => {
      quiet();
      setExitCode(await repairCommand(backendOf(command), id, context));
    });

  runs
    .command("send-event")
    .description("deliver an event to a run's waitForEvent (kept until the run waits for it)")
    .argument("<id>", "the run id")
    .argument("<name>", "the event name, as in waitForEvent(name)")
    .option("--payload <json>", "the event's payload, as JSON (default: null)")
    .option("--signal-id <id>", "an id that makes a repeated send deliver the event once")
    .option("--workflows <file>", WORKFLOWS_HELP)
    .addHelpText(
      "after",
      `\nExamples:\n  tsworkflow runs send-event run_0abc approval --payload '{"approved": true}'\n  tsworkflow runs send-event run_0abc approval --payload true --signal-id approval-42 --redis redis://127.0.0.1:6379`,
    )
    .action(
      reading(
        async (
          store,
          id: string,
          name: string,
          options: { payload?: string; signalId?: string; workflows?: string },
          command: Command,
        ) => {
          let payload: unknown = null;
          if (options.payload !== undefined) {
            try {
              payload = JSON.parse(options.payload);
            } catch {
              throw new UsageError(
                `--payload takes JSON, e.g. --payload '{"approved": true}' or --payload '"text"'; got ${JSON.stringify(options.payload)}.`,
              );
            }
          }
          const backend = backendOf(command);
          const send = backendSendEvent(backend, options.workflows ? { workflows: options.workflows } : {});
          return sendEventCommand(
            store,
            send,
            backend,
            id,
            name,
            payload,
            options.signalId,
            context,
            options.workflows !== undefined,
          );
        },
      ),
    );

  /** Opens the backend's schedule store for one command and closes it, whatever happens. */
  const withSchedules =
    <A extends unknown[]>(
      handler: (opened: OpenedSchedules, backend: Backend, ...args: A) => Promise<number>,
    ) =>
    async (...args: A) => {
      quiet();
      const backend = backendOf(args[args.length - 1] as Command);
      const opened = await openSchedules(backend);
      try {
        setExitCode(await handler(opened, backend, ...args));
      } finally {
        await opened.close().catch(() => {});
      }
    };

  const schedules = program
    .command("schedules")
    .description("list the schedules, pause, resume, trigger or delete one")
    .addHelpText(
      "after",
      "\nThe changes are stored where the schedules live (--dir, --redis): the app or worker that fires them\nreads them within a minute. On AWS (--table), pause, resume and delete change the EventBridge schedule\ntoo (set TSWORKFLOW_SCHEDULE_GROUP); trigger there with createClient() of tsworkflow/aws.\n\nExamples:\n  tsworkflow schedules list\n  tsworkflow schedules pause daily-report\n  tsworkflow schedules trigger daily-report --redis redis://127.0.0.1:6379",
    );
  schedules
    .command("list")
    .description("each schedule: workflow, cron or interval, state, last tick and run, next fire times")
    .option("--json", "print the schedules as JSON")
    .action(
      withSchedules((opened, _backend, options: { json?: boolean }) =>
        listSchedulesCommand(opened.store, options, context),
      ),
    );
  for (const [action, description] of [
    ["pause", "stop a schedule's ticks until it is resumed"],
    ["resume", "resume a paused schedule from now"],
    ["trigger", "start one run of the schedule's workflow now, outside its ticks"],
    ["delete", "remove a schedule's state (a runtime that declares it creates it again)"],
  ] as const) {
    schedules
      .command(action)
      .description(description)
      .argument("<name>", "the schedule's name")
      .action(
        withSchedules((opened, backend, name: string) =>
          changeScheduleCommand(backend, opened, action, name, context),
        ),
      );
  }

  program
    .command("dashboard")
    .description("serve the web dashboard (read-only unless --allow-actions)")
    .option("--port <port>", `port to listen on, 0 for any free port (default: ${DEFAULT_PORT})`, port)
    .option("--host <host>", "address to listen on (default: 127.0.0.1)")
    .option("--allow-actions", "show and accept the cancel and retry buttons")
    .option("--token <token>", "require this token on every request (default: $TSWORKFLOW_DASHBOARD_TOKEN)")
    .option("--webhooks", "serve POST /hooks/<token>: calls to createWebhook() URLs resume their runs")
    .option(
      "--webhook-secret <secret>",
      "require HMAC-signed webhook calls (default: $TSWORKFLOW_WEBHOOK_SECRET)",
    )
    .option("--workflows <file>", `for actions and webhooks on the file backend: ${WORKFLOWS_HELP}`)
    .option(
      "--trace-url <template>",
      'link each run to its trace, e.g. "https://tracing.example/trace/{traceId}"',
    )
    .addHelpText(
      "after",
      '\nExamples:\n  tsworkflow dashboard\n  tsworkflow dashboard --port 8080 --allow-actions\n  tsworkflow dashboard --redis redis://127.0.0.1:6379 --host 0.0.0.0 --token "$(openssl rand -hex 16)"',
    )
    .action(
      async (
        options: {
          port?: number;
          host?: string;
          allowActions?: boolean;
          token?: string;
          webhooks?: boolean;
          webhookSecret?: string;
          workflows?: string;
          traceUrl?: string;
        },
        command: Command,
      ) => {
        const backend = backendOf(command);
        // Before anything is opened: a missing hono is said at once.
        dashboardPackages();
        const { runDashboardCommand } = await import("./dashboard/command.ts");
        setExitCode(
          await runDashboardCommand(backend, {
            port: options.port ?? DEFAULT_PORT,
            host: options.host ?? "127.0.0.1",
            allowActions: options.allowActions ?? false,
            token: options.token ?? (context.env.TSWORKFLOW_DASHBOARD_TOKEN || undefined),
            workflows: options.workflows,
            webhooks: options.webhooks ?? false,
            webhookSecret: options.webhookSecret ?? (context.env.TSWORKFLOW_WEBHOOK_SECRET || undefined),
            traceUrl: options.traceUrl,
            context,
          }),
        );
      },
    );

  program
    .command("dev")
    .description(
      "run a workflows module on the embedded backend with the dashboard, restarting it on changes",
    )
    .argument("<module>", "the module that defines (and may start) your workflows, e.g. ./src/workflows.ts")
    .option("--port <port>", `dashboard port, 0 for any free port (default: ${DEFAULT_PORT})`, port)
    .option("--host <host>", "dashboard address (default: 127.0.0.1)")
    .option("--token <token>", "require this token on the dashboard (default: $TSWORKFLOW_DASHBOARD_TOKEN)")
    .option("--no-schedules", "fire none of the schedules that the module exports")
    .addHelpText(
      "after",
      "\nThe module runs in a worker process on the file backend (--dir, default ./.tsworkflow), which fires the\nschedules the module exports (export const daily = schedule(...)). The dashboard has cancel and retry on\nand serves webhooks; each run that starts gets a link. Saving a file next to the module restarts the\nworker, which resumes the runs from their logs.\n\nExample:\n  tsworkflow dev ./src/workflows.ts",
    )
    .action(
      async (
        module: string,
        options: { port?: number; host?: string; token?: string; schedules: boolean },
        command: Command,
      ) => {
        const backend = backendOf(command);
        // Before the worker starts: a missing hono is said at once.
        dashboardPackages();
        const { runDevCommand } = await import("./dev/command.ts");
        setExitCode(
          await runDevCommand(module, backend, {
            port: options.port ?? DEFAULT_PORT,
            host: options.host ?? "127.0.0.1",
            token: options.token ?? (context.env.TSWORKFLOW_DASHBOARD_TOKEN || undefined),
            schedules: options.schedules,
            context,
          }),
        );
      },
    );

  program
    .command("worker")
    .description("run a Redis worker: consumes the runs' activations and steps (needs --redis)")
    .requiredOption("--workflows <file>", "the module that defines (imports) your workflows and steps")
    .option(
      "--concurrency <n>",
      "activations, and separately steps, run at once (default: 10)",
      wholeNumber("--concurrency", 1),
    )
    .option("--worker-id <id>", "names this worker in logs (default: <hostname>-<pid>)")
    .option(
      "--stalled-after-ms <ms>",
      "a dead worker's jobs and run locks go to another worker after about this long (default: 30000)",
      wholeNumber("--stalled-after-ms", 1),
    )
    .option(
      "--drain-timeout-ms <ms>",
      "after SIGTERM or SIGINT, exit with code 1 if the jobs in flight still run after this long (default: 30000)",
      wholeNumber("--drain-timeout-ms", 1),
    )
    .option("--no-schedules", "fire none of the schedules that the workflows module exports")
    .addHelpText(
      "after",
      "\nThe worker fires the schedules that the workflows module exports (export const daily = schedule(...)):\nstate in Redis, one run per tick however many workers run. Every worker of a prefix must load the same.\n\nExample:\n  tsworkflow worker --redis redis://127.0.0.1:6379 --workflows ./src/workflows.ts --concurrency 20",
    )
    .action(
      async (
        options: {
          workflows: string;
          concurrency?: number;
          workerId?: string;
          stalledAfterMs?: number;
          drainTimeoutMs?: number;
          schedules: boolean;
        },
        command: Command,
      ) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const [source, given] =
          globals.redis !== undefined
            ? ["--redis", globals.redis]
            : context.env.TSWORKFLOW_REDIS_URL
              ? ["TSWORKFLOW_REDIS_URL", context.env.TSWORKFLOW_REDIS_URL]
              : ["REDIS_URL", context.env.REDIS_URL || undefined];
        const redis = redisUrlOf(given, source);
        if (!redis)
          throw new UsageError(
            "tsworkflow worker runs on Redis: pass --redis URL (or set TSWORKFLOW_REDIS_URL), e.g. --redis redis://127.0.0.1:6379.",
          );
        const runWorker = await loadRunWorker();
        const worker = await runWorker({
          redis,
          workflows: options.workflows,
          ...(options.concurrency ? { concurrency: options.concurrency } : {}),
          ...(globals.prefix ? { prefix: globals.prefix } : {}),
          ...(options.workerId ? { workerId: options.workerId } : {}),
          ...(options.stalledAfterMs ? { stalledAfterMs: options.stalledAfterMs } : {}),
          ...(options.drainTimeoutMs ? { drainTimeoutMs: options.drainTimeoutMs } : {}),
          ...(options.schedules ? {} : { schedules: [] }),
        });
        await worker.stopped;
        setExitCode(EXIT.ok);
      },
    );

  return program;
}

function loadRunWorker() {
  return importOptional(() => import("../redis/index.ts"), "tsworkflow worker (Redis mode)", [
    "ioredis",
    "bullmq",
  ]).then((redis) => redis.runWorker);
}
