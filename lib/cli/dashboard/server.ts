import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Context, Hono } from "hono";
import { InvalidRunIdError, TsWorkflowError } from "../../core/errors.ts";
import type { WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import { optional } from "../../core/optional.ts";
import type { RunTags } from "../../core/tags.ts";
import { linkedRun, withChainLinks } from "../../engine/continuation.ts";
import { storedRequestsOf } from "../../inspect/stored-requests.ts";
import { readWaitingFor, type SlotReader } from "../../inspect/waiting-for.ts";
import {
  type EventStore,
  FINISHED_STATUSES,
  RUN_STATUSES,
  type RunPage,
  type RunRecord,
  type RunStatus,
} from "../../ports/event-store.ts";
import { pageOf } from "../../ports/run-cursor.ts";
import type { ScheduleStore } from "../../ports/schedule-store.ts";
import { storedFireTimes } from "../../schedules/scheduler.ts";
import { DEFAULT_WEBHOOK_MAX_BYTES, handleWebhook, webhookError } from "../../webhooks/handle-webhook.ts";
import { refuseRest } from "../../webhooks/webhook-server.ts";
import type { RunActions, SendEvent } from "../backend.ts";
import { ActionNotAvailableError, BackendUnavailableError, UsageError } from "../errors.ts";
import { type EventWindowQuery, eventWindow } from "../event-window.ts";
import { listRunsOfVersion } from "../runs.ts";
import { buildTimeline } from "../timeline.ts";
import { dashboardPackages } from "./packages.ts";
import {
  type PageContext,
  type RunFilters,
  type RunsPageData,
  renderMessagePage,
  renderRunPage,
  renderRunsPage,
  renderSchedulesPage,
  type ScheduleRow,
  underMount,
} from "./pages.ts";

/** What the dashboard reads: an `EventStore`, or a runtime (`getRuntime()`, `LocalRuntime`…). */
export type RunReader = Pick<EventStore, "getRun" | "listRuns" | "getEvents">;

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /**
   * Where the runs are read from: `new FileStorage({ dir, readOnly: true })` beside a running app, or your
   * app's own runtime.
   */
  storage: RunReader;
  /**
   * Show the cancel and retry buttons and accept their requests.
   * @default false (read-only)
   */
  allowActions?: boolean;
  /**
   * Links each run page to its trace: `{traceId}` is replaced by the trace id of the run (recorded when
   * an OpenTelemetry SDK was registered as it started).
   * @default no link
   * @example
   * createDashboard({ storage, traceUrl: "https://ui.honeycomb.io/acme/datasets/prod/trace?trace_id={traceId}" });
   */
  traceUrl?: string;
  /**
   * Where the schedules' state is read for the schedules page (`/schedules`): the store of the runtime that
   * fires them (`tsworkflow dashboard` opens the backend's).
   * @default none: the page says that this dashboard reads no schedules
   */
  schedules?: Pick<ScheduleStore, "list">;
  /**
   * When set, every request must carry it, as `?token=` or `Authorization: Bearer <token>`.
   * @default no token
   */
  token?: string;
  /**
   * How cancel and retry are done, e.g. with your runtime's engine:
   * `{ cancel: (id, reason) => runtime.engine.cancelRun(id, reason), retry: (id) => runtime.engine.retryRun(id) }`.
   * @default none: the buttons answer that this dashboard cannot act on runs
   */
  actions?: RunActions;
  /**
   * Says where the runs come from, in the page header.
   * @default "tsworkflow storage"
   */
  label?: string;
  /**
   * How often an open page of an active run refreshes, in milliseconds (the runs list: twice that).
   * @default 1500
   */
  refreshMs?: number;
  /**
   * Host names accepted in the `Host` header, against DNS rebinding; `serveDashboard` sets the loopback
   * names when it listens on a loopback address.
   * @default any host
   */
  allowedHosts?: readonly string[];
  /**
   * Serve `POST /hooks/<token>` for `createWebhook()` waits: each call resumes its run with the JSON body
   * (see `handleWebhook`). Webhook calls need no dashboard token: the webhook's own token authorizes one
   * call, and `secret` requires an HMAC signature too.
   * @default off
   */
  webhooks?: { sendEvent: SendEvent; secret?: string };
  /**
   * How many of the newest runs the runs page reads to count them per status and search them by id
   * (beyond it, counts show as `N+` and filters ask the store's indexes). Lower it where reads cost money.
   * @default 5000
   */
  scanLimit?: number;
  /**
   * Says why unfinished runs do not go on now, when nothing carries them on: `tsworkflow dashboard` on a
   * file backend that no app owns answers "no app owns ./.tsworkflow now: your app carries the run on when
   * it next starts there". The page of an unfinished run shows it beside the run's stored status, in place
   * of the live dot (it still refreshes, and goes live when an app starts).
   * @default none: unfinished runs are shown live
   */
  idleNote?: () => Promise<string | undefined>;
  /**
   * Who takes the runs on, as the "Waiting for" of a pending run names it ("a worker that registers workflow
   * checkout to start it"): `tsworkflow dashboard` says "an app" on the file backend.
   * @default "a worker"
   */
  runner?: string;
  /**
   * The concurrency slots of the runs' backend (`RedisSlotStore`, `DynamoDBSlotStore`, your runtime's slot
   * store): a pending run that holds its slot is then said to wait for its start under the rate limit only.
   * @default none: a run with both limits is said to wait for its slot, then its start
   */
  slots?: SlotReader;
  /** @default Date.now */
  now?: () => number;
}

const WEBHOOK_MAX_BYTES = DEFAULT_WEBHOOK_MAX_BYTES;

const DEFAULT_SCAN_LIMIT = 5000;
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;

/**
 * The web dashboard as a hono app: the runs page (`/`), a run's page (`/runs/:id`), their JSON
 * (`/api/runs`, `/api/runs/:id`) and, with `allowActions`, `POST /api/runs/:id/cancel|retry`.
 * Plain server-rendered HTML with a small inline script: no build step, nothing fetched from the network.
 * Mounted under a path of your own hono app with `app.route(path, dashboard)`, its links, form and script
 * requests stay under that path.
 * @example
 * import { createDashboard } from "tsworkflow/cli";
 * import { FileStorage } from "tsworkflow/local";
 * const app = createDashboard({ storage: new FileStorage({ readOnly: true }) });
 * const response = await app.request("/api/runs");
 * @throws MissingDependencyError when hono or @hono/node-server is not installed (they are loaded here, not
 *   when `tsworkflow/cli` is imported)
 */
export function createDashboard(options: DashboardOptions): Hono {
  const { storage } = options;
  const allowActions = options.allowActions ?? false;
  const refreshMs = options.refreshMs ?? 1500;
  const now = options.now ?? Date.now;
  const scanLimit = options.scanLimit ?? DEFAULT_SCAN_LIMIT;
  const allowedHosts = options.allowedHosts?.map((host) => host.toLowerCase());
  const { hono, bodyLimit } = dashboardPackages();
  const app = new hono.Hono();
  const waitsOf = (run: RunRecord, events: WorkflowEvent[]) =>
    readWaitingFor(run, events, {
      now: now(),
      ...optional("runner", options.runner),
      ...optional("slots", options.slots),
    });

  const pageContext = (c: Context): PageContext => ({
    base: mountOf(c),
    href(path, params = {}) {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(params))
        if (value !== undefined && value !== "") query.set(key, String(value));
      if (options.token) query.set("token", options.token);
      const text = query.toString();
      const url = underMount(mountOf(c), path);
      return text ? `${url}?${text}` : url;
    },
    ...(options.token ? { token: options.token } : {}),
    nonce: c.get("nonce" as never) as string,
    backendLabel: options.label ?? "tsworkflow storage",
    allowActions,
    refreshMs,
    now: now(),
    ...(options.traceUrl ? { traceUrl: options.traceUrl } : {}),
    all: c.req.query("all") === "1",
  });

  if (options.webhooks) {
    const { sendEvent, secret } = options.webhooks;
    // Registered before the dashboard's own checks: other systems call it, with the webhook's token.
    app.post(
      "/hooks/:token",
      // Refused before the body is read when Content-Length is too large, cut off when a stream grows too large.
      bodyLimit.bodyLimit({
        maxSize: WEBHOOK_MAX_BYTES,
        onError: (c) => {
          const refused = webhookError("BODY_TOO_LARGE", `The body is over ${WEBHOOK_MAX_BYTES} bytes.`);
          const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
          if (incoming) refuseRest(incoming);
          return c.json(refused.body, refused.status);
        },
      }),
      async (c) => {
        const headers: Record<string, string> = {};
        c.req.raw.headers.forEach((value, name) => {
          headers[name.toLowerCase()] = value;
        });
        try {
          const response = await handleWebhook(
            { token: c.req.param("token"), body: await c.req.text(), headers },
            {
              store: storage,
              sendEvent,
              maxBodyBytes: WEBHOOK_MAX_BYTES,
              ...(secret ? { secret } : {}),
            },
          );
          return c.json(response.body, response.status);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          return c.json({ ok: false, error: message }, 500);
        }
      },
    );
  }

  app.use(async (c, next) => {
    c.set("mount" as never, mountPrefix(c) as never);
    if (allowedHosts && !allowedHosts.includes(hostName(c.req.header("host")))) {
      return c.text("This dashboard answers only on the address it listens on.", 403);
    }
    if (options.token && !tokenMatches(options.token, requestToken(c))) {
      c.header("WWW-Authenticate", 'Bearer realm="tsworkflow"');
      const message =
        "This dashboard needs its token: open the URL that `tsworkflow dashboard` printed (it ends in ?token=...), or send Authorization: Bearer <token>.";
      return isApi(c) ? c.json({ error: message }, 401) : c.text(message, 401);
    }
    // hono routes `<mount>/` to no handler of a mounted app (strict routing): its runs page is `<mount>`.
    const mount = mountOf(c);
    // HEAD too: hono answers it with the GET route, but `c.req.method` stays "HEAD".
    if (mount && c.req.path === `${mount}/` && (c.req.method === "GET" || c.req.method === "HEAD"))
      return c.redirect(mount + new URL(c.req.url).search, 308);
    const nonce = randomBytes(16).toString("base64");
    c.set("nonce" as never, nonce as never);
    await next();
    c.header("Cache-Control", "no-store");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header(
      "Content-Security-Policy",
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; style-src-attr 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    );
  });

  app.onError((error, c) => {
    const message = error instanceof Error ? error.message : String(error);
    const status =
      error instanceof InvalidRunIdError
        ? 404
        : error instanceof UsageError
          ? 400
          : error instanceof BackendUnavailableError
            ? 503
            : 500;
    if (isApi(c)) return c.json({ error: message }, status);
    const title = status === 404 ? "Run not found" : status === 400 ? "Bad filter" : "Cannot read runs";
    return c.html(renderMessagePage(pageContext(c), title, message), status);
  });

  app.notFound((c) =>
    isApi(c)
      ? c.json({ error: `No such endpoint: ${c.req.method} ${c.req.path}.` }, 404)
      : c.html(
          renderMessagePage(pageContext(c), "Page not found", `There is no page at ${c.req.path}.`),
          404,
        ),
  );

  app.get("/", async (c) =>
    c.html(renderRunsPage(pageContext(c), await loadRuns(storage, filtersOf(c), scanLimit), isFragment(c))),
  );

  app.get("/api/runs", async (c) => c.json(await loadRuns(storage, filtersOf(c), scanLimit)));

  app.get("/schedules", async (c) =>
    c.html(
      renderSchedulesPage(
        pageContext(c),
        options.schedules ? await loadSchedules(options.schedules, storage, scanLimit, now()) : undefined,
      ),
    ),
  );

  app.get("/runs/:runId", async (c) => {
    const runId = c.req.param("runId");
    const run = await findRun(storage, runId);
    if (!run) {
      return c.html(
        renderMessagePage(
          pageContext(c),
          "Run not found",
          `No run with id "${runId}". Check the id, and that the dashboard reads the right storage.`,
        ),
        404,
      );
    }
    const idle = FINISHED_STATUSES.has(run.status) ? undefined : await options.idleNote?.();
    const events = await storage.getEvents(runId);
    return c.html(
      renderRunPage(
        { ...pageContext(c), ...optional("idleNote", idle) },
        run,
        events,
        await waitsOf(run, events),
        isFragment(c),
        await storedRequestsOf(storage, run.runId),
      ),
    );
  });

  app.get("/api/runs/:runId", async (c) => {
    const runId = c.req.param("runId");
    const window = eventWindowOf(c);
    const run = await findRun(storage, runId);
    if (!run) return c.json({ error: `No run with id "${runId}".` }, 404);
    const events = await storage.getEvents(runId);
    const { events: shown, nextAfter } = eventWindow(events, window);
    const stored = await storedRequestsOf(storage, run.runId);
    return c.json({
      run,
      waitingFor: await waitsOf(run, events),
      ...(stored.length > 0 ? { storedRequests: stored } : {}),
      events: shown,
      ...optional("nextAfter", nextAfter),
      timeline: buildTimeline(run, events, now()),
    });
  });

  app.post("/api/runs/:runId/:action{cancel|retry}", async (c) => {
    const runId = c.req.param("runId");
    const action = c.req.param("action") as "cancel" | "retry";
    if (!allowActions)
      return c.json(
        { error: "This dashboard is read-only: start it with --allow-actions to cancel or retry runs." },
        403,
      );
    // A cross-site form cannot send JSON, and a cross-site fetch of JSON needs a preflight we never allow.
    if (!(c.req.header("content-type") ?? "").startsWith("application/json"))
      return c.json({ error: "Send the action as JSON (Content-Type: application/json)." }, 415);
    const origin = c.req.header("origin");
    if (origin && origin !== "null" && hostOfUrl(origin) !== hostOfUrl(c.req.url))
      return c.json({ error: "Actions are accepted only from the dashboard's own pages." }, 403);
    const body = (await c.req.json().catch(() => ({}))) as { reason?: unknown };
    const reason =
      typeof body.reason === "string" && body.reason.trim() ? body.reason.trim().slice(0, 1000) : undefined;
    const before = await findRun(storage, runId);
    if (!before) return c.json({ error: `No run with id "${runId}".` }, 404);
    if (!options.actions)
      return c.json({ error: "This dashboard was started without a way to cancel or retry runs." }, 501);
    let carrier: unknown;
    try {
      if (action === "cancel") await options.actions.cancel(runId, reason);
      else carrier = await options.actions.retry(runId);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const status =
        error instanceof ActionNotAvailableError ? 501 : error instanceof TsWorkflowError ? 409 : 500;
      return c.json({ error: message }, status);
    }
    const after = (await storage.getRun(runId)) ?? before;
    const message =
      action === "retry"
        ? typeof carrier === "string" && !FINISHED_STATUSES.has(after.status)
          ? `Retried. ${carrier}`
          : `Retried: the run is ${after.status} now.`
        : after.status === "cancelled"
          ? "Run cancelled."
          : "Cancellation requested: the run ends cancelled once its workflow has run its cancellation.";
    return c.json({ ok: true, run: after, message });
  });

  return app;
}

/** Options of {@link serveDashboard}. */
export interface ServeDashboardOptions extends DashboardOptions {
  /** @default 4300; 0 picks a free port */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
}

/** A dashboard listening on a port. */
export interface RunningDashboard {
  /** `http://127.0.0.1:4300/` (without the token). */
  url: string;
  port: number;
  /** Stops listening and drops open connections (the storage stays open: it is yours). */
  close(): Promise<void>;
}

/**
 * Serves {@link createDashboard} over HTTP, on 127.0.0.1 unless told otherwise.
 * @example
 * import { serveDashboard } from "tsworkflow/cli";
 * import { FileStorage } from "tsworkflow/local";
 * const dashboard = await serveDashboard({ storage: new FileStorage({ readOnly: true }), port: 0 });
 * console.log(dashboard.url);
 * await dashboard.close();
 * @throws Error with code EADDRINUSE when the port is taken
 * @throws MissingDependencyError when hono or @hono/node-server is not installed
 */
export async function serveDashboard(options: ServeDashboardOptions): Promise<RunningDashboard> {
  const host = options.host ?? "127.0.0.1";
  const loopback = isLoopback(host);
  const app = createDashboard({
    ...options,
    ...(options.allowedHosts || !loopback ? {} : { allowedHosts: ["127.0.0.1", "localhost", "::1", host] }),
  });
  return new Promise<RunningDashboard>((resolve, reject) => {
    const server = dashboardPackages().nodeServer.serve(
      { fetch: app.fetch, port: options.port ?? 4300, hostname: host },
      (info: AddressInfo) => {
        server.off("error", reject);
        const shown = host.includes(":") ? `[${host}]` : host;
        resolve({
          url: `http://${shown}:${info.port}/`,
          port: info.port,
          close: () =>
            new Promise<void>((done) => {
              (server as Server).closeAllConnections?.();
              server.close(() => done());
            }),
        });
      },
    ) as Server;
    server.once("error", reject);
  });
}

/** A filter on a status that does not exist would list every run, as if it were not there: refused. */
function runStatus(status: string): RunStatus {
  if (!(RUN_STATUSES as readonly string[]).includes(status))
    throw new UsageError(`Unknown status ${JSON.stringify(status)}: use ${RUN_STATUSES.join(", ")}.`);
  return status as RunStatus;
}

/**
 * The `limit` of a runs page: a whole number from 1 (at most `MAX_PAGE_SIZE` runs are listed), refused otherwise
 * as `--limit` is, rather than silently replaced by the default.
 */
function pageSize(limit: string | undefined): number {
  if (limit === undefined || limit === "") return DEFAULT_PAGE_SIZE;
  const size = Number(limit);
  if (!/^\d+$/.test(limit) || size < 1)
    throw new UsageError(`limit must be a whole number ≥ 1, e.g. limit=50; got ${JSON.stringify(limit)}.`);
  return Math.min(size, MAX_PAGE_SIZE);
}

/**
 * The part of a run's log that `GET /api/runs/<id>` gives: `?after=<seq>&limit=<n>`, each a whole number from 0
 * (`limit=0`: the run without its events), refused otherwise; without them, the whole log.
 */
function eventWindowOf(c: Context): EventWindowQuery {
  const window: EventWindowQuery = {};
  for (const name of ["after", "limit"] as const) {
    const text = c.req.query(name);
    if (text === undefined || text === "") continue;
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
      throw new UsageError(
        `${name} must be a whole number ≥ 0, e.g. ${name}=100; got ${JSON.stringify(text)}.`,
      );
    window[name] = Number(text);
  }
  return window;
}

function filtersOf(c: Context): RunFilters {
  const status = c.req.query("status");
  const workflow = c.req.query("workflow")?.trim();
  const q = c.req.query("q")?.trim();
  const tag = c.req.query("tag")?.trim();
  const version = c.req.query("version")?.trim();
  const limit = pageSize(c.req.query("limit"));
  // The cursors of the pages before this one, oldest last: the last is this page's, the others lead back.
  const pages = (c.req.query("pages") ?? "")
    .split(".")
    .filter((cursor) => /^[A-Za-z0-9_-]{1,400}$/.test(cursor));
  const cursor = pages[pages.length - 1];
  return {
    ...(status ? { status: runStatus(status) } : {}),
    ...(workflow ? { workflow } : {}),
    ...(q ? { q } : {}),
    ...(tag ? { tag } : {}),
    ...(version ? { version } : {}),
    limit,
    ...(cursor ? { cursor, pages } : {}),
  };
}

async function loadRuns(storage: RunReader, filters: RunFilters, scanLimit: number): Promise<RunsPageData> {
  const scanned = (await storage.listRuns({ limit: scanLimit })).runs;
  const capped = scanned.length >= scanLimit;
  const needle = filters.q?.toLowerCase();
  const tags = tagsOf(filters.tag);
  const tagged = (run: RunRecord) => Object.entries(tags).every(([key, value]) => run.tags?.[key] === value);
  const base = scanned.filter(
    (run) =>
      (!filters.workflow || run.workflowName === filters.workflow) &&
      (!filters.version || run.workflowVersion === filters.version) &&
      (!needle || run.runId.toLowerCase().includes(needle)) &&
      tagged(run),
  );
  const counts = Object.fromEntries(RUN_STATUSES.map((status) => [status, 0])) as Record<RunStatus, number>;
  for (const run of base) counts[run.status] += 1;
  const pageQuery = { limit: filters.limit, ...(filters.cursor ? { cursor: filters.cursor } : {}) };
  let page: RunPage;
  if (needle) {
    // A search by id covers the scanned runs; an exact id finds an older run too.
    const found = base.filter((run) => !filters.status || run.status === filters.status);
    if (found.length === 0 && filters.q) {
      const exact = await findRun(storage, filters.q);
      if (
        exact &&
        (!filters.status || exact.status === filters.status) &&
        (!filters.workflow || exact.workflowName === filters.workflow) &&
        (!filters.version || exact.workflowVersion === filters.version) &&
        tagged(exact)
      )
        found.push(exact);
    }
    page = pageOf(found, pageQuery);
  } else {
    // The store's own indexes page through every matching run, past the scanned ones.
    page = await listRunsOfVersion(
      storage,
      {
        ...(filters.status ? { status: filters.status } : {}),
        ...(filters.workflow ? { workflowName: filters.workflow } : {}),
        ...(Object.keys(tags).length > 0 ? { tags } : {}),
        ...pageQuery,
      },
      filters.version,
    );
  }
  const workflows = [...new Set(scanned.map((run) => run.workflowName))];
  if (filters.workflow && !workflows.includes(filters.workflow)) workflows.push(filters.workflow);
  const matching = filters.status ? counts[filters.status] : base.length;
  return {
    runs: page.runs,
    ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
    counts,
    matching,
    capped,
    workflows: workflows.sort(),
    filters,
  };
}

/** Each schedule's state and next fire times, and its last runs among the newest `scanLimit` runs. */
async function loadSchedules(
  schedules: Pick<ScheduleStore, "list">,
  storage: RunReader,
  scanLimit: number,
  now: number,
): Promise<ScheduleRow[]> {
  const [states, page] = await Promise.all([schedules.list(), storage.listRuns({ limit: scanLimit })]);
  return states
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((state) => {
      const { times, problem } = storedFireTimes(state, now, 3);
      return {
        state,
        nextFireTimes: times,
        ...optional("problem", problem),
        lastRuns: page.runs
          .filter((run) => run.idempotencyKey?.startsWith(`schedule:${state.name}:`))
          .slice(0, 5)
          .map(withChainLinks),
      };
    });
}

/** The tags of the tag filter (`tenant=acme,plan=pro`); a part without `=` is ignored. */
function tagsOf(filter: string | undefined): RunTags {
  const tags: RunTags = {};
  for (const part of filter?.split(",") ?? []) {
    const at = part.indexOf("=");
    if (at > 0) tags[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return tags;
}

/** The run, or undefined for an unknown or malformed id. */
async function findRun(storage: RunReader, runId: string): Promise<RunRecord | undefined> {
  try {
    assertRunId(runId);
  } catch {
    return undefined;
  }
  return linkedRun(await storage.getRun(runId));
}

function requestToken(c: Context): string | undefined {
  const header = c.req.header("authorization");
  if (header?.startsWith("Bearer ")) return header.slice("Bearer ".length).trim();
  return c.req.query("token");
}

/** Compares in constant time: hashing first makes both sides the same length whatever was sent. */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();
  return timingSafeEqual(digest(expected), digest(given));
}

/**
 * Where the dashboard is mounted in the app that serves it: "/admin/workflows" for
 * `app.route("/admin/workflows", dashboard)`, "" at the root. Its middleware's route is `<mount>/*`, so the mount
 * is as many segments of the request's path as that route has before `*` (one per `:param` too).
 * `c.req.routePath` rather than `hono/route`, which hono < 4.8 (in the peer range) lacks.
 */
function mountPrefix(c: Context): string {
  const depth = c.req.routePath.split("/").filter((segment) => segment !== "" && segment !== "*").length;
  return depth === 0
    ? ""
    : c.req.path
        .split("/")
        .slice(0, depth + 1)
        .join("/");
}

/** The mount prefix the dashboard's middleware found for this request. */
const mountOf = (c: Context): string => (c.get("mount" as never) as string | undefined) ?? "";

const isApi = (c: Context) => c.req.path.slice(mountOf(c).length).startsWith("/api/");
/** The page's script asks for the live part only, to refresh it in place. */
const isFragment = (c: Context) => c.req.header("x-tsworkflow-fragment") === "live";

function hostName(host: string | undefined): string {
  if (!host) return "";
  const lower = host.toLowerCase();
  if (lower.startsWith("[")) return lower.slice(1, lower.indexOf("]"));
  return lower.replace(/:\d+$/, "");
}

function hostOfUrl(url: string): string {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return "";
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
