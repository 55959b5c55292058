import type { WorkflowEvent } from "../../core/events.ts";
import { describeEvent, eventTone } from "../../inspect/describe.ts";
import { formatSpan, formatTime, prettyJson } from "../../inspect/format.ts";
import {
  describeStoredRequests,
  STORED_REQUESTS_NOTE,
  type StoredRequest,
} from "../../inspect/stored-requests.ts";
import { parseTraceparent } from "../../observability/trace-context.ts";
import { FINISHED_STATUSES, RUN_STATUSES, type RunRecord, type RunStatus } from "../../ports/event-store.ts";
import type { ScheduleState } from "../../ports/schedule-store.ts";
import { endsOf } from "../ends.ts";
import { runSpan } from "../runs.ts";
import { scheduleWhen } from "../schedules.ts";
import {
  buildTimeline,
  NO_OUTCOME_YET,
  parentOf,
  type TimelineRow,
  type TimelineSegment,
} from "../timeline.ts";
import { DASHBOARD_CSS, DASHBOARD_SCRIPT } from "./assets.ts";
import { html, raw, type SafeHtml } from "./html.ts";

/** What every page needs to know about the dashboard and the request. */
export interface PageContext {
  /** Where the dashboard is mounted in the app that serves it: "/admin/workflows", or "" at the root. */
  base: string;
  /** An internal link, under the mount, carrying the token when the dashboard has one. */
  href(path: string, params?: Record<string, string | number | undefined>): string;
  token?: string;
  /** The nonce that lets the page's inline style and script run under its Content-Security-Policy. */
  nonce: string;
  backendLabel: string;
  allowActions: boolean;
  refreshMs: number;
  now: number;
  /** Where a run's trace is shown, `{traceId}` replaced (see `DashboardOptions.traceUrl`). */
  traceUrl?: string;
  /** Why an unfinished run does not go on now, when nothing carries it on (see `DashboardOptions.idleNote`). */
  idleNote?: string;
  /** Show every row of a run's timeline and events (`?all=1`), not only the ends of a long list. */
  all?: boolean;
}

/** A path of the dashboard (`/runs/<id>`) as the browser must ask for it, under the mount; its runs page is the mount itself. */
export const underMount = (mount: string, path: string): string =>
  mount && path === "/" ? mount : mount + path;

/** How many rows a run's page shows at each end of a long timeline and event list (`?all=1` shows them all). */
export const PAGE_ENDS = 100;

export interface RunFilters {
  status?: RunStatus;
  workflow?: string;
  q?: string;
  /** `key=value` pairs, comma-separated: only runs that carry every one (`listRuns({ tags })`). */
  tag?: string;
  /** Only runs started with this version of their workflow's code. */
  version?: string;
  limit: number;
  /** This page's cursor (absent on the first page). */
  cursor?: string;
  /** The cursors of the pages up to this one, this page's last: "previous" drops it. */
  pages?: string[];
}

export interface RunsPageData {
  runs: RunRecord[];
  /** The next page's cursor, when more runs match. */
  nextCursor?: string;
  /** Runs per status, over the runs that match the workflow filter and the search. */
  counts: Record<RunStatus, number>;
  /** How many runs match all the filters. */
  matching: number;
  /** True when the counts cover only the newest runs of a large store. */
  capped: boolean;
  workflows: string[];
  filters: RunFilters;
}

function layout(context: PageContext, title: string, body: SafeHtml): string {
  return `<!doctype html>${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · tsworkflow</title>
<link rel="icon" href="data:,">
<style nonce="${context.nonce}">${raw(DASHBOARD_CSS)}</style>
</head>
<body data-refresh-ms="${context.refreshMs}" data-token="${context.token ?? ""}"${context.base ? html` data-base="${context.base}"` : ""}>
<header class="top">
  <a class="brand" href="${context.href("/")}">tsworkflow</a>
  <a class="nav" href="${context.href("/")}">Runs</a>
  <a class="nav" href="${context.href("/schedules")}">Schedules</a>
  <span class="backend" title="Where the runs are read from">${context.backendLabel}</span>
  <span class="mode ${context.allowActions ? "mode-actions" : "mode-readonly"}">${context.allowActions ? "actions enabled" : "read-only"}</span>
</header>
<div class="page">${body}</div>
<script nonce="${context.nonce}">${raw(DASHBOARD_SCRIPT)}</script>
</body>
</html>`}`;
}

const statusBadge = (status: string) => html`<span class="badge status-${status}">${status}</span>`;

/** The runs page: counts per status, filters, and the newest matching runs. */
export function renderRunsPage(context: PageContext, data: RunsPageData, fragment = false): string {
  const { filters } = data;
  const total = RUN_STATUSES.reduce((sum, status) => sum + data.counts[status], 0);
  const link = (status: RunStatus | undefined) =>
    context.href("/", { status, workflow: filters.workflow, q: filters.q, tag: filters.tag });
  const more = (n: number) => `${n}${data.capped ? "+" : ""}`;
  const rows = data.runs.map((run) => {
    const finished = FINISHED_STATUSES.has(run.status);
    return html`<tr data-run-id="${run.runId}" data-status="${run.status}">
  <td><a class="run-link" href="${context.href(`/runs/${run.runId}`)}"><code>${run.runId}</code></a></td>
  <td>${run.workflowName}${run.workflowVersion ? html` <span class="muted">v${run.workflowVersion}</span>` : ""}</td>
  <td>${statusBadge(run.status)}</td>
  <td title="${run.createdAt}">${formatTime(run.createdAt)}</td>
  <td>${formatSpan(runSpan(run, context.now))}${finished ? "" : "…"}</td>
</tr>`;
  });
  const live = html`<div id="live" data-live="1" data-every="${context.refreshMs * 2}">
  <nav class="counts" aria-label="Runs per status">
    <a class="count ${filters.status ? "" : "current"}" data-status="all" href="${link(undefined)}"><span>all</span><b>${more(total)}</b></a>
    ${RUN_STATUSES.map(
      (status) =>
        html`<a class="count count-${status} ${filters.status === status ? "current" : ""}" data-status="${status}" href="${link(status)}"><span>${status}</span><b>${more(data.counts[status])}</b></a>`,
    )}
  </nav>
  ${
    data.runs.length === 0
      ? total === 0 && !filters.q && !filters.workflow && !filters.tag
        ? html`<p class="empty">No runs yet in the ${context.backendLabel}. Runs appear here as your app starts them: this page refreshes itself.</p>`
        : html`<p class="empty">No runs match these filters. <a href="${context.href("/")}">Show all runs</a></p>`
      : html`<table class="runs">
  <thead><tr><th>Run</th><th>Workflow</th><th>Status</th><th>Created (UTC)</th><th>Duration</th></tr></thead>
  <tbody>${rows}</tbody>
</table>
<p class="summary">${pager(context, data)}</p>`
  }
</div>`;
  if (fragment) return live.value;
  const body = html`<div class="title-row"><h1>Runs</h1></div>
<form class="filters" method="get" action="${underMount(context.base, "/")}" id="filters">
  <input type="search" name="q" value="${filters.q ?? ""}" placeholder="Search by run id" aria-label="Search by run id" autocomplete="off">
  <input type="search" name="tag" value="${filters.tag ?? ""}" placeholder="Tags: tenant=acme,plan=pro" aria-label="Filter by tags (key=value, comma-separated)" autocomplete="off">
  <input type="search" name="version" value="${filters.version ?? ""}" placeholder="Version" aria-label="Filter by workflow version" autocomplete="off" size="8">
  <select name="workflow" aria-label="Workflow">
    <option value="">All workflows</option>
    ${data.workflows.map((name) => html`<option value="${name}" ${name === filters.workflow ? raw("selected") : ""}>${name}</option>`)}
  </select>
  <select name="status" aria-label="Status">
    <option value="">All statuses</option>
    ${RUN_STATUSES.map((status) => html`<option value="${status}" ${status === filters.status ? raw("selected") : ""}>${status}</option>`)}
  </select>
  ${context.token ? html`<input type="hidden" name="token" value="${context.token}">` : ""}
  <button type="submit">Filter</button>
  <a class="clear" href="${context.href("/")}">Clear</a>
</form>
${live}`;
  return layout(context, "Runs", body);
}

/** "Runs 51-100 of 240 matching", with links to the previous and next pages. */
function pager(context: PageContext, data: RunsPageData): SafeHtml {
  const { filters } = data;
  const pages = filters.pages ?? [];
  const first = pages.length * filters.limit + 1;
  const same = {
    status: filters.status,
    workflow: filters.workflow,
    q: filters.q,
    tag: filters.tag,
    limit: filters.limit,
  };
  const previous =
    pages.length === 0
      ? ""
      : html` · <a class="page-previous" rel="prev" href="${context.href("/", { ...same, pages: pages.slice(0, -1).join(".") || undefined })}">previous page</a>`;
  const next = data.nextCursor
    ? html` · <a class="page-next" rel="next" href="${context.href("/", { ...same, pages: [...pages, data.nextCursor].join(".") })}">next page</a>`
    : "";
  const shown = data.runs.length === 0 ? "No runs" : `Runs ${first}-${first + data.runs.length - 1}`;
  return html`${shown} of ${data.matching}${data.capped ? "+" : ""} matching${previous}${next}`;
}

/** A run: its facts, what it waits for, input, result or error, timeline and events; refreshed while it is active. */
export function renderRunPage(
  context: PageContext,
  run: RunRecord,
  events: WorkflowEvent[],
  waits: string[],
  fragment = false,
  stored: readonly StoredRequest[] = [],
): string {
  const active = !FINISHED_STATUSES.has(run.status);
  const canCancel = active;
  const canRetry = run.status === "failed";
  const actions = context.allowActions
    ? html`<div class="actions">
  <input type="text" id="cancel-reason" placeholder="Reason (optional)" aria-label="Reason for cancelling" ${canCancel ? "" : raw("disabled")}>
  <button type="button" class="danger" data-action="cancel" data-run-id="${run.runId}" title="Stop the run: its remaining steps and sleeps do not run (only unfinished runs)" ${canCancel ? "" : raw("disabled")}>Cancel run</button>
  <button type="button" data-action="retry" data-run-id="${run.runId}" title="Go on from the failed step, with one more attempt (only failed runs)" ${canRetry ? "" : raw("disabled")}>Retry run</button>
</div>`
    : html`<p class="hint">Read-only: start the dashboard with <code>--allow-actions</code> to cancel or retry runs.</p>`;
  const facts: [string, SafeHtml | string][] = [
    ["Workflow", run.workflowName],
    [
      "Status",
      // Live only while something carries the run on; otherwise its stored status, and who will.
      html`${statusBadge(run.status)}${
        !active
          ? ""
          : context.idleNote
            ? html` <span class="idle-note">stored status; ${context.idleNote}</span>`
            : html` <span class="live-dot">live</span>`
      }`,
    ],
    ["Created", html`<span title="${run.createdAt}">${formatTime(run.createdAt)}</span>`],
    ["Updated", html`<span title="${run.updatedAt}">${formatTime(run.updatedAt)}</span>`],
    ["Duration", `${formatSpan(runSpan(run, context.now))}${active ? " so far" : ""}`],
    ["Events", String(run.version)],
  ];
  if (run.workflowVersion) facts.push(["Version", html`<code>${run.workflowVersion}</code>`]);
  const chain = (label: string, runId: string | undefined) => {
    if (runId)
      facts.push([label, html`<a href="${context.href(`/runs/${runId}`)}"><code>${runId}</code></a>`]);
  };
  chain("Continues run", run.continuedFrom);
  chain("Continued as run", run.continuedAs);
  if (run.idempotencyKey) facts.push(["Idempotency key", html`<code>${run.idempotencyKey}</code>`]);
  const parent = parentOf(events);
  if (parent)
    facts.push([
      "Parent run",
      html`<a href="${context.href(`/runs/${parent.runId}`)}"><code>${parent.runId}</code></a> <span class="muted">as ${parent.childId}</span>`,
    ]);
  if (waits.length > 0) facts.push(["Waiting for", html`<code>${waits.join(", ")}</code>`]);
  if (stored.length > 0)
    facts.push([
      "Stored for the app",
      html`${describeStoredRequests(stored)} <span class="muted">${STORED_REQUESTS_NOTE}</span>`,
    ]);
  const traceLink = traceLinkOf(context, events);
  if (traceLink)
    facts.push([
      "Trace",
      html`<a href="${traceLink.url}" rel="noopener noreferrer" target="_blank"><code>${traceLink.traceId}</code></a>`,
    ]);

  const outcome =
    run.status === "failed" && run.error
      ? html`<section class="panel panel-error" id="run-error"><h2>Error</h2>
  <p class="error-line"><b>${run.error.name}</b>: ${run.error.message}</p>
  ${run.error.code ? html`<p class="muted">code ${run.error.code}</p>` : ""}
  ${run.error.stack ? html`<pre class="stack">${run.error.stack}</pre>` : ""}
</section>`
      : run.status === "completed"
        ? html`<section class="panel" id="run-result"><h2>Result</h2><pre>${prettyJson(run.result)}</pre></section>`
        : "";

  const live = html`<div id="live" data-live="${active ? "1" : "0"}" data-status="${run.status}" data-can-cancel="${canCancel ? "1" : "0"}" data-can-retry="${canRetry ? "1" : "0"}">
  <dl class="facts">${facts.map(([label, value]) => html`<div><dt>${label}</dt><dd>${value}</dd></div>`)}</dl>
  <div class="panels">
    <section class="panel" id="run-input"><h2>Input</h2><pre>${prettyJson(run.input)}</pre></section>
    ${outcome}
  </div>
  <section class="panel" id="timeline-section"><h2>Timeline</h2>${renderTimeline(run, events, context)}</section>
  <section class="panel" id="events-section"><h2>Events <span class="muted">(${events.length})</span></h2>${renderEvents(run, events, context)}</section>
</div>`;
  if (fragment) return live.value;
  const body = html`<nav class="crumbs"><a href="${context.href("/")}">← Runs</a></nav>
<div class="title-row">
  <h1><code>${run.runId}</code></h1>
  ${actions}
</div>
<p id="flash" role="status" aria-live="polite"></p>
${live}`;
  return layout(context, `Run ${run.runId}`, body);
}

/** The link to the run's trace: the dashboard's trace URL template with the trace id its log recorded. */
function traceLinkOf(
  context: PageContext,
  events: WorkflowEvent[],
): { url: string; traceId: string } | undefined {
  const [first] = events;
  if (!context.traceUrl || first?.type !== "workflow_started") return undefined;
  const traceId = parseTraceparent(first.traceparent)?.traceId;
  return traceId === undefined
    ? undefined
    : { url: context.traceUrl.replaceAll("{traceId}", traceId), traceId };
}

/** A page that says what went wrong (unknown run, bad token…). */
/** One schedule on the schedules page. */
export interface ScheduleRow {
  state: ScheduleState;
  nextFireTimes: Date[];
  /** Why its stored declaration gives no fire times. */
  problem?: string;
  /** Its newest runs (ticks and triggers), newest first. */
  lastRuns: RunRecord[];
}

/** The schedules: each one's workflow, cron or interval, state, next fire times and last runs. */
export function renderSchedulesPage(context: PageContext, rows: ScheduleRow[] | undefined): string {
  const body =
    rows === undefined
      ? html`<p class="empty">This dashboard reads no schedules (start it with <code>tsworkflow dashboard</code> on the backend that fires them).</p>`
      : rows.length === 0
        ? html`<p class="empty">No schedules in the ${context.backendLabel}: a runtime stores them when it starts with its <code>schedules</code> option.</p>`
        : html`<table class="runs schedules">
  <thead><tr><th>Schedule</th><th>Workflow</th><th>When</th><th>State</th><th>Next (UTC)</th><th>Last runs</th></tr></thead>
  <tbody>${rows.map(
    (row) => html`<tr data-schedule="${row.state.name}">
  <td><code>${row.state.name}</code></td>
  <td>${row.state.declaration?.workflow ?? "-"}</td>
  <td>${scheduleWhen(row.state.declaration)}</td>
  <td>${
    !row.state.paused && row.state.lastError
      ? html`<span class="badge status-failed">failing</span><p class="error-line">${row.state.lastError.message}</p>`
      : statusBadge(row.state.paused ? "paused" : "active")
  }</td>
  <td>${row.nextFireTimes.map((time) => html`<div>${formatTime(time.getTime())}</div>`)}${
    row.problem ? html`<p class="error-line">${row.problem}</p>` : ""
  }</td>
  <td>${
    row.lastRuns.length === 0
      ? html`<span class="muted">none yet</span>`
      : row.lastRuns.map(
          (run) =>
            html`<div><a class="run-link" href="${context.href(`/runs/${run.runId}`)}"><code>${run.runId}</code></a> ${statusBadge(run.status)}</div>`,
        )
  }</td>
</tr>`,
  )}</tbody>
</table>`;
  return layout(context, "Schedules", html`<div class="title-row"><h1>Schedules</h1></div>${body}`);
}

export function renderMessagePage(context: PageContext, title: string, message: string): string {
  return layout(
    context,
    title,
    html`<nav class="crumbs"><a href="${context.href("/")}">← Runs</a></nav><h1>${title}</h1><p class="message">${message}</p>`,
  );
}

const SEGMENT_TEXT: Record<TimelineSegment["kind"], string> = {
  running: "running",
  completed: "completed",
  failed: "failed",
  retrying: "failed, retried",
  "retry-wait": "waiting to retry",
  sleeping: "sleeping",
  slept: "slept",
  waiting: "waiting for an event",
  received: "event received",
  "timed-out": "timed out",
  abandoned: "abandoned",
};

/** A running bar may be a step attempt that has not begun: the log says when it began only with its outcome. */
const RUNNING_LEGEND = "running (or, for a limited step, waiting for its slot or turn)";

/** What a timeline row is called: the step, `sleep`, the awaited event, or the child workflow (linked). */
function rowTitle(row: TimelineRow, context: PageContext): SafeHtml | string {
  if (row.kind === "sleep") return "sleep";
  if (row.kind === "hook") return `event "${row.name}"`;
  if (row.kind === "child" && row.childRunId)
    return html`<a href="${context.href(`/runs/${row.childRunId}`)}">${row.name}</a>`;
  return row.name;
}

function renderTimeline(run: RunRecord, events: WorkflowEvent[], context: PageContext): SafeHtml {
  const timeline = buildTimeline(run, events, context.now);
  if (timeline.rows.length === 0) return html`<p class="empty">No steps or sleeps yet.</p>`;
  const span = Math.max(timeline.end - timeline.start, 1);
  const position = (segment: TimelineSegment) => {
    const left = ((segment.start - timeline.start) / span) * 100;
    const width = Math.max(((segment.end - segment.start) / span) * 100, 0.6);
    const clampedLeft = Math.min(Math.max(left, 0), 99.4);
    return `left:${clampedLeft.toFixed(3)}%;width:${Math.min(width, 100 - clampedLeft).toFixed(3)}%`;
  };
  const ticks = axisTicks(span);
  const describe = (row: TimelineRow, segment: TimelineSegment) => {
    const took = formatSpan(segment.end - segment.start);
    const what = SEGMENT_TEXT[segment.kind];
    const attempt = segment.attempt ? ` attempt ${segment.attempt}` : "";
    const error = segment.error ? ` · ${segment.error.name}: ${segment.error.message}` : "";
    const due = segment.dueAt && segment.open ? ` · due ${formatTime(segment.dueAt)}` : "";
    const measured =
      segment.ranMs === undefined
        ? ""
        : ` · ran ${formatSpan(segment.ranMs)}, started ${formatSpan(segment.waitMs ?? 0)} after it was sent`;
    if (row.kind === "step" && segment.kind === "running")
      return `${row.id}${attempt}: sent ${took} ago, ${NO_OUTCOME_YET}`;
    return `${row.id}${attempt}: ${what}${segment.open ? " for" : " after"} ${took}${error}${due}${measured}`;
  };
  const rowOf = (
    row: TimelineRow,
  ) => html`<div class="tl-row" data-id="${row.id}" data-kind="${row.kind}" data-status="${row.status}">
  <div class="tl-label" title="${row.id}">
    <span class="tl-name">${rowTitle(row, context)}</span>
    <code>${row.id}</code>
    ${row.kind === "step" && row.attempts > 1 ? html`<span class="tl-attempts">${row.attempts} attempts</span>` : ""}
    ${row.kind === "sleep" && row.durationMs !== undefined ? html`<span class="tl-attempts">${formatSpan(row.durationMs)}</span>` : ""}
    ${row.ranMs === undefined ? "" : html`<span class="tl-timing" data-ran-ms="${row.ranMs}" data-wait-ms="${row.waitMs ?? 0}" title="How long the step's attempts ran, and how long after they were sent they started (a wait for a concurrency slot or rate-limit turn, a busy queue, or a worker that died running an earlier copy)">ran ${formatSpan(row.ranMs)} · started after ${formatSpan(row.waitMs ?? 0)}</span>`}
  </div>
  <div class="tl-track">${row.segments.map(
    (segment) =>
      html`<div class="bar bar-${segment.kind}${segment.open ? " bar-open" : ""}" data-kind="${segment.kind}" ${segment.attempt ? html`data-attempt="${segment.attempt}"` : ""} ${segment.ranMs === undefined ? "" : html`data-ran-ms="${segment.ranMs}" data-wait-ms="${segment.waitMs ?? 0}"`} style="${position(segment)}" title="${describe(row, segment)}"><span>${
        segment.kind === "retry-wait" ? "" : segment.attempt && row.attempts > 1 ? `#${segment.attempt} ` : ""
      }${formatSpan(segment.end - segment.start)}${
        segment.kind === "sleeping" && row.durationMs !== undefined ? ` of ${formatSpan(row.durationMs)}` : ""
      }</span></div>`,
  )}</div>
</div>`;
  const { head, hidden, tail } = endsOf(timeline.rows, context.all ? Number.POSITIVE_INFINITY : PAGE_ENDS);
  const gap = hidden
    ? html`<div class="tl-row tl-gap" data-hidden="${hidden}"><div class="tl-label muted">… ${hidden} more rows</div><div class="tl-track">${showAll(context, run, timeline.rows.length)}</div></div>`
    : "";
  const legend = (
    [
      "completed",
      "running",
      "retrying",
      "retry-wait",
      "failed",
      "sleeping",
      "slept",
      "waiting",
      "received",
      "timed-out",
      "abandoned",
    ] as const
  )
    .filter((kind) => timeline.rows.some((row) => row.segments.some((segment) => segment.kind === kind)))
    .map(
      (kind) =>
        html`<span class="legend-item"><i class="bar-${kind}"></i>${kind === "running" ? RUNNING_LEGEND : SEGMENT_TEXT[kind]}</span>`,
    );
  return html`<div class="timeline" data-start="${timeline.start}" data-end="${timeline.end}">
  <div class="tl-row tl-axis" aria-hidden="true"><div class="tl-label"></div><div class="tl-track">${ticks.map(
    (tick) =>
      html`<span class="tick" style="left:${((tick / span) * 100).toFixed(3)}%">${tick === 0 ? "0" : `+${formatSpan(tick)}`}</span>`,
  )}</div></div>
  ${head.map(rowOf)}${gap}${tail.map(rowOf)}
</div>
<p class="legend">${legend}</p>`;
}

/** Round tick marks on the time axis: 1, 2 or 5 times a power of ten (in ms), about five of them. */
export function axisTicks(span: number): number[] {
  const rough = span / 5;
  const power = 10 ** Math.floor(Math.log10(Math.max(rough, 1)));
  const step =
    [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough) ?? power * 10;
  const ticks: number[] = [];
  for (let tick = 0; tick <= span * 1.0001; tick += step) ticks.push(tick);
  return ticks;
}

/** The link to a run's page with every row of its long lists. */
function showAll(context: PageContext, run: RunRecord, total: number): SafeHtml {
  return html`<a class="show-all" href="${context.href(`/runs/${run.runId}`, { all: 1 })}">show all ${total}</a>`;
}

function renderEvents(run: RunRecord, events: WorkflowEvent[], context: PageContext): SafeHtml {
  const start = events[0] ? Date.parse(events[0].timestamp) : 0;
  const rowOf = (event: WorkflowEvent) => html`<tr data-seq="${event.seq}" data-type="${event.type}">
  <td>${event.seq}</td>
  <td title="${event.timestamp}">${formatTime(event.timestamp)}</td>
  <td>+${formatSpan(Date.parse(event.timestamp) - start)}</td>
  <td><span class="event-type tone-${eventTone(event.type)}">${event.type}</span></td>
  <td><details id="event-${event.seq}"><summary>${describeEvent(event) || "details"}</summary><pre>${prettyJson(event)}</pre></details></td>
</tr>`;
  const { head, hidden, tail } = endsOf(events, context.all ? Number.POSITIVE_INFINITY : PAGE_ENDS);
  const gap = hidden
    ? html`<tr class="events-gap" data-hidden="${hidden}"><td colspan="5" class="muted">… ${hidden} more events · ${showAll(context, run, events.length)}</td></tr>`
    : "";
  return html`<table class="events">
  <thead><tr><th>#</th><th>Time (UTC)</th><th>After</th><th>Type</th><th>Details</th></tr></thead>
  <tbody>${head.map(rowOf)}${gap}${tail.map(rowOf)}</tbody>
</table>`;
}
