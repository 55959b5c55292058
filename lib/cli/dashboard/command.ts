import {
  type Backend,
  backendActions,
  backendSendEvent,
  fileOwner,
  loadWorkflows,
  openReader,
  runnerOf,
} from "../backend.ts";
import { BackendUnavailableError, EXIT } from "../errors.ts";
import type { Output } from "../runs.ts";
import { openSchedules } from "../schedules.ts";
import { serveDashboard } from "./server.ts";

/** Options of `tsworkflow dashboard`. */
export interface DashboardCommandOptions {
  port: number;
  host: string;
  allowActions: boolean;
  token: string | undefined;
  /** The app's workflows module, for cancel, retry and webhooks on the file backend. */
  workflows: string | undefined;
  /** Serve `POST /hooks/<token>`. */
  webhooks: boolean;
  webhookSecret: string | undefined;
  /** `--trace-url`: a run page links to `traceUrl` with `{traceId}` replaced. */
  traceUrl: string | undefined;
  context: Output;
}

/** `tsworkflow dashboard`: serves until SIGINT or SIGTERM, then closes the server and the storage. */
export async function runDashboardCommand(
  backend: Backend,
  options: DashboardCommandOptions,
): Promise<number> {
  const { context } = options;
  // A wrong --workflows fails now rather than on the first click.
  if (options.workflows) await loadWorkflows(options.workflows);
  const storage = await openReader(backend);
  const schedules = await openSchedules(backend).catch(() => undefined);
  let dashboard: Awaited<ReturnType<typeof serveDashboard>>;
  try {
    // Fail now, naming the backend, rather than on the first page view.
    await storage.listRuns({ limit: 1 });
    dashboard = await serveDashboard({
      storage,
      ...(schedules ? { schedules: schedules.store } : {}),
      label: backend.label,
      runner: runnerOf(backend),
      ...(storage.slots ? { slots: storage.slots } : {}),
      // Every refresh of the runs page reads this many run documents: keep DynamoDB's bill small.
      ...(backend.kind === "dynamodb" ? { scanLimit: 500 } : {}),
      allowActions: options.allowActions,
      ...(options.allowActions
        ? { actions: backendActions(backend, options.workflows ? { workflows: options.workflows } : {}) }
        : {}),
      ...(options.token ? { token: options.token } : {}),
      ...(options.traceUrl ? { traceUrl: options.traceUrl } : {}),
      ...(backend.kind === "file"
        ? {
            idleNote: async () =>
              (await fileOwner(backend))
                ? undefined
                : `no app owns ${backend.dir} now: your app carries the run on when it next starts there`,
          }
        : {}),
      ...(options.webhooks
        ? {
            webhooks: {
              sendEvent: backendSendEvent(backend, options.workflows ? { workflows: options.workflows } : {}),
              ...(options.webhookSecret ? { secret: options.webhookSecret } : {}),
            },
          }
        : {}),
      port: options.port,
      host: options.host,
    });
  } catch (error) {
    await storage.close().catch(() => {});
    await schedules?.close().catch(() => {});
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE")
      throw new BackendUnavailableError(
        `Port ${options.port} on ${options.host} is already in use: pass another --port (or --port 0 for any free port).`,
      );
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND")
      throw new BackendUnavailableError(
        `Cannot listen on ${options.host}: it is not an address of this machine.`,
      );
    throw error;
  }
  const { style } = context;
  const link = options.token ? `${dashboard.url}?token=${encodeURIComponent(options.token)}` : dashboard.url;
  context.out(`tsworkflow dashboard on ${style.bold(link)}\n`);
  context.out(
    `${style.dim(`Reading the ${backend.label}; ${options.allowActions ? "cancel and retry enabled" : "read-only (--allow-actions enables cancel and retry)"}. Ctrl-C stops it.`)}\n`,
  );
  if (options.webhooks)
    context.out(
      `${style.dim(`Webhooks: POST ${dashboard.url}hooks/<token>${options.webhookSecret ? " (signed calls only)" : ""}`)}\n`,
    );
  if (backend.kind === "file" && (options.allowActions || options.webhooks)) {
    const owner = await fileOwner(backend);
    const requests = listed([
      ...(options.allowActions ? ["cancellations", "retries"] : []),
      ...(options.webhooks ? ["webhook calls"] : []),
    ]);
    context.err(
      `${context.errStyle.yellow("note:")} ${
        owner
          ? `${requests} go to your app (${owner}), which carries them out.`
          : `no app owns ${backend.dir} now: ${requests} are stored and carried out when your app starts there${options.workflows ? ", or here with --workflows while none does" : " (or start the dashboard with --workflows to run them here)"}.`
      }\n`,
    );
  }
  if (!options.token && !/^(127\.|localhost$|::1$)/.test(options.host))
    context.err(
      `${context.errStyle.yellow("warning:")} listening on ${options.host} without --token: anyone who can reach this port can read your runs${options.allowActions ? " and cancel them" : ""}.\n`,
    );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  context.out(`${style.dim(`${signal}: stopping the dashboard.`)}\n`);
  await dashboard.close();
  await storage.close().catch(() => {});
  await schedules?.close().catch(() => {});
  return EXIT.ok;
}

/** "a, b and c" */
function listed(items: readonly string[]): string {
  return items.length < 2 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}
