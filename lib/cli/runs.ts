import { RunNotFoundError } from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import { assertRunId } from "../core/ids.ts";
import { optional } from "../core/optional.ts";
import { linkedPage, withChainLinks } from "../engine/continuation.ts";
import { describeEvent, describeTags, errorLine, eventTone } from "../inspect/describe.ts";
import {
  clean,
  formatSpan,
  formatTime,
  hangingIndent,
  prettyJson,
  renderTable,
  type Style,
} from "../inspect/format.ts";
import {
  describeStoredRequests,
  STORED_REQUESTS_NOTE,
  storedRequestsOf,
} from "../inspect/stored-requests.ts";
import { readWaitingFor, type SlotReader, type WaitContext } from "../inspect/waiting-for.ts";
import {
  type EventStore,
  FINISHED_STATUSES,
  type RunPage,
  type RunQuery,
  type RunRecord,
} from "../ports/event-store.ts";
import { type Backend, fileOwner, type RunActions, type SendEvent } from "./backend.ts";
import { endsOf } from "./ends.ts";
import { EXIT } from "./errors.ts";
import { type EventWindowQuery, eventWindow } from "./event-window.ts";
import { buildTimeline, NO_OUTCOME_YET, parentOf } from "./timeline.ts";

/** What a command knows about the backend to say what runs wait for: who takes them on, and its slots. */
export type WaitSources = Pick<WaitContext, "runner"> & { slots?: SlotReader };

/** Where a command writes, and how. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** Styling for standard output. */
  style: Style;
  /** Styling for standard error. */
  errStyle: Style;
  now(): number;
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** How long a run has taken: to its last update when finished, to now while active. */
export function runSpan(run: RunRecord, now: number): number {
  const end = FINISHED_STATUSES.has(run.status) ? Date.parse(run.updatedAt) : now;
  return end - Date.parse(run.createdAt);
}

async function requireRun(store: EventStore, runId: string): Promise<RunRecord> {
  assertRunId(runId);
  const run = await store.getRun(runId);
  if (!run) throw new RunNotFoundError(runId);
  return withChainLinks(run);
}

/**
 * One page of runs, and with `version` only the runs of that workflow version: no store indexes versions,
 * so pages are read (each to its end, so that the cursor skips nothing) until `limit` runs match.
 */
export async function listRunsOfVersion(
  store: Pick<EventStore, "listRuns">,
  query: RunQuery,
  version: string | undefined,
): Promise<RunPage> {
  if (version === undefined) return linkedPage(await store.listRuns(query));
  const limit = query.limit ?? 100;
  const runs: RunRecord[] = [];
  let cursor = query.cursor;
  do {
    const page = await store.listRuns({
      ...query,
      limit: limit - runs.length,
      ...(cursor ? { cursor } : {}),
    });
    runs.push(...page.runs.filter((run) => run.workflowVersion === version));
    cursor = page.nextCursor;
  } while (cursor && runs.length < limit);
  return linkedPage({ runs, ...(cursor ? { nextCursor: cursor } : {}) });
}

/** `runs list`: one page, newest first; the next page's cursor goes to standard error (or into the JSON). */
export async function listCommand(
  store: EventStore,
  query: RunQuery,
  options: { json?: boolean; version?: string },
  io: Output,
  waits: WaitSources = {},
): Promise<number> {
  const page = await listRunsOfVersion(store, query, options.version);
  const now = io.now();
  /** What a run waits for (only a pending or suspended run waits: the others' logs are not read). */
  const waitsOf = async (run: RunRecord) =>
    run.status === "pending" || run.status === "suspended"
      ? readWaitingFor(run, await store.getEvents(run.runId), { ...waits, now })
      : [];
  if (options.json) {
    const runs = [];
    for (const run of page.runs) runs.push({ ...run, waitingFor: await waitsOf(run) });
    io.out(json({ ...page, runs }));
    return EXIT.ok;
  }
  const { runs } = page;
  if (runs.length === 0) {
    io.out(`${io.style.dim(query.cursor ? "No more runs." : "No runs found.")}\n`);
    return EXIT.ok;
  }
  const rows = runs.map((run) => [
    run.runId,
    clean(run.workflowVersion ? `${run.workflowName} v${run.workflowVersion}` : run.workflowName),
    io.style.status(run.status),
    formatTime(run.createdAt),
    `${formatSpan(runSpan(run, now))}${FINISHED_STATUSES.has(run.status) ? "" : "…"}`,
  ]);
  const headers = ["RUN ID", "WORKFLOW", "STATUS", "CREATED (UTC)", "DURATION"];
  // Pending runs say why they have not started (their limits, from their first event).
  if (query.status === "pending") {
    headers.push("WAITING FOR");
    for (const [index, run] of runs.entries()) rows[index]?.push(clean((await waitsOf(run)).join(", ")));
  }
  io.out(`${renderTable(headers, rows, io.style)}\n`);
  if (page.nextCursor)
    io.err(`${io.errStyle.dim(`More runs: pass --cursor ${page.nextCursor} for the next page.`)}\n`);
  return EXIT.ok;
}

/** How many rows `runs show` prints at each end of a long timeline (`--all` prints them all). */
const SHOW_ENDS = 50;

/** `runs show`: the run document, what it waits for, and its steps and sleeps. Exits 1 for a failed run. */
export async function showCommand(
  store: EventStore,
  runId: string,
  options: { json?: boolean; all?: boolean },
  io: Output,
  waits: WaitSources = {},
): Promise<number> {
  const run = await requireRun(store, runId);
  const exitCode = run.status === "failed" ? EXIT.failed : EXIT.ok;
  const events = await store.getEvents(runId);
  const now = io.now();
  const waited = await readWaitingFor(run, events, { ...waits, now });
  const stored = await storedRequestsOf(store, runId);
  if (options.json) {
    io.out(json({ ...run, waitingFor: waited, ...(stored.length > 0 ? { storedRequests: stored } : {}) }));
    return exitCode;
  }
  const { style } = io;
  const fields: [string, string][] = [
    ["run", style.bold(run.runId)],
    ["workflow", clean(run.workflowName)],
    ["status", style.status(run.status)],
    ["created", formatTime(run.createdAt)],
    ["updated", formatTime(run.updatedAt)],
    ["duration", `${formatSpan(runSpan(run, now))}${FINISHED_STATUSES.has(run.status) ? "" : " so far"}`],
    ["events", String(run.version)],
  ];
  if (run.workflowVersion) fields.push(["version", clean(run.workflowVersion)]);
  if (run.continuedFrom) fields.push(["continues run", run.continuedFrom]);
  if (run.continuedAs) fields.push(["continued as run", run.continuedAs]);
  if (run.idempotencyKey) fields.push(["idempotency key", clean(run.idempotencyKey)]);
  if (run.tags && Object.keys(run.tags).length > 0) fields.push(["tags", clean(describeTags(run.tags))]);
  const parent = parentOf(events);
  if (parent) fields.push(["parent run", clean(`${parent.runId} (as ${parent.childId})`)]);
  if (waited.length > 0) fields.push(["waiting for", clean(waited.join(", "))]);
  if (stored.length > 0)
    fields.push(["stored for the app", clean(`${describeStoredRequests(stored)} ${STORED_REQUESTS_NOTE}`)]);
  const width = Math.max(...fields.map(([label]) => label.length)) + 2;
  const lines = fields.map(([label, value]) => `${style.dim(label.padEnd(width))}${value}`);

  lines.push("", style.bold("input"), indent(clean(prettyJson(run.input), { multiline: true })));
  if (run.status === "completed")
    lines.push("", style.bold("result"), indent(clean(prettyJson(run.result), { multiline: true })));
  if (run.status === "failed" && run.error) {
    lines.push(
      "",
      style.bold(style.red("error")),
      indent(style.red(clean(errorLine(run.error), { multiline: true }))),
    );
    const stack = stackBelowMessage(run.error.stack);
    if (stack) lines.push(style.dim(indent(clean(stack, { multiline: true }))));
  }

  const timeline = buildTimeline(run, events, now);
  if (timeline.rows.length > 0) {
    const { head, hidden, tail } = endsOf(timeline.rows, options.all ? Number.POSITIVE_INFINITY : SHOW_ENDS);
    const rows = [...head, ...tail].map((row) => [
      clean(row.id),
      clean(row.kind === "sleep" ? "sleep" : row.kind === "hook" ? `event "${row.name}"` : row.name),
      style.status(row.status),
      row.kind === "step" ? String(row.attempts) : "-",
      `+${formatSpan(row.start - timeline.start)}`,
      `${formatSpan(row.end - row.start)}${row.segments.some((segment) => segment.open) ? "…" : ""}`,
      row.kind === "sleep" && row.status === "sleeping" && row.resumeAt
        ? `until ${formatTime(row.resumeAt)}`
        : row.status === "failed" || row.status === "retrying"
          ? clean(errorLine(row.error))
          : row.kind === "child"
            ? `child run ${row.childRunId ?? ""}`
            : row.ranMs !== undefined
              ? `ran ${formatSpan(row.ranMs)}, started ${formatSpan(row.waitMs ?? 0)} after it was sent`
              : row.kind === "step" && row.status === "running"
                ? NO_OUTCOME_YET
                : "",
    ]);
    const table = renderTable(
      ["ID", "NAME", "STATUS", "ATTEMPTS", "START", "TOOK", "NOTE"],
      rows,
      style,
    ).split("\n");
    // Below the header and the first rows.
    if (hidden) table.splice(1 + head.length, 0, style.dim(`… ${hidden} more rows (--all prints every row)`));
    lines.push("", style.bold("timeline"), indent(table.join("\n")));
  }
  io.out(`${lines.join("\n")}\n`);
  return exitCode;
}

/** How many events `runs events` prints at each end of a long log (`--all` prints them all). */
const EVENTS_ENDS = 50;

/**
 * `runs events`: the log, one line per event; its first and last 50 events when it is longer than 100 (a
 * line between says how many are left out), every event with `--all`. `--after` and `--limit` give a window
 * of it, whole (in JSON too; without them the JSON is the whole log, as `replayHistory` takes it).
 */
export async function eventsCommand(
  store: EventStore,
  runId: string,
  options: EventWindowQuery & { json?: boolean; all?: boolean },
  io: Output,
): Promise<number> {
  await requireRun(store, runId);
  const log = await store.getEvents(runId);
  const { events, nextAfter } = eventWindow(log, options);
  // On standard error, so that the JSON on standard output stays whole.
  const more = () => {
    if (nextAfter !== undefined && options.limit)
      io.err(
        `${io.errStyle.dim(`More events: pass --after ${nextAfter} --limit ${options.limit} for the next ones.`)}\n`,
      );
  };
  if (options.json) {
    io.out(json(events));
    more();
    return EXIT.ok;
  }
  const { style } = io;
  if (events.length === 0) {
    const none =
      options.limit === 0 ? "--limit 0 shows no events" : `No events after seq ${options.after ?? 0}`;
    io.out(`${style.dim(`${none}: the log has ${log.length}.`)}\n`);
    return EXIT.ok;
  }
  const start = log[0] ? Date.parse(log[0].timestamp) : 0;
  const tone = (event: WorkflowEvent) => {
    const kind = eventTone(event.type);
    return kind === "ok" ? style.green : kind === "bad" ? style.red : kind === "warn" ? style.yellow : String;
  };
  const whole = options.all || options.limit !== undefined;
  const { head, hidden, tail } = endsOf(events, whole ? Number.POSITIVE_INFINITY : EVENTS_ENDS);
  const rows = [...head, ...tail].map((event) => [
    String(event.seq),
    formatTime(event.timestamp),
    `+${formatSpan(Date.parse(event.timestamp) - start)}`,
    tone(event)(clean(event.type)),
    clean(describeEvent(event)),
  ]);
  const table = renderTable(["SEQ", "TIME (UTC)", "AFTER", "TYPE", "DETAILS"], rows, style).split("\n");
  // Below the header and the first events.
  if (hidden)
    table.splice(
      1 + head.length,
      0,
      style.dim(`… ${hidden} more events (--all prints every event, --after <seq> --limit <n> a window)`),
    );
  io.out(`${table.join("\n")}\n`);
  more();
  return EXIT.ok;
}

/** The run, or the last run of the `continueAsNew` chain it begins. */
async function liveEndOf(store: EventStore, run: RunRecord): Promise<RunRecord> {
  let current = run;
  while (current.continuedAs) {
    const next = await store.getRun(current.continuedAs);
    if (!next) break;
    current = withChainLinks(next);
  }
  return current;
}

/** `runs cancel` */
export async function cancelCommand(
  store: EventStore,
  actions: RunActions,
  backend: Backend,
  requested: string,
  reason: string | undefined,
  io: Output,
): Promise<number> {
  // A run that continued as new is cancelled where its chain goes on.
  const before = await liveEndOf(store, await requireRun(store, requested));
  const runId = before.runId;
  if (FINISHED_STATUSES.has(before.status)) {
    io.err(
      `${io.errStyle.red("error:")} Run ${runId} is already ${before.status}: only pending, running or suspended runs can be cancelled.\n`,
    );
    return EXIT.failed;
  }
  await actions.cancel(runId, reason);
  const after = (await store.getRun(runId)) ?? before;
  if (after.status === "cancelled") {
    io.out(`Run ${io.style.bold(runId)} is ${io.style.status("cancelled")} (it was ${before.status}).\n`);
  } else if (backend.kind === "file" && !(await fileOwner(backend))) {
    io.out(
      `Cancellation of run ${io.style.bold(runId)} is stored: no app owns ${backend.dir} now, so the run ends ${io.style.status("cancelled")} when your app next starts there (its finally blocks run in the app; or pass --workflows to run them here now).\n`,
    );
  } else {
    io.out(
      `Cancellation of run ${io.style.bold(runId)} requested: ${backend.kind === "file" ? "your app" : "a worker"} runs the workflow's cancellation (its finally blocks) and the run ends ${io.style.status("cancelled")}.\n`,
    );
  }
  return EXIT.ok;
}

/** `runs send-event`: delivers an event to a run's `waitForEvent` (kept until it waits, if it does not yet). */
export async function sendEventCommand(
  store: EventStore,
  sendEvent: SendEvent,
  backend: Backend,
  runId: string,
  eventName: string,
  payload: unknown,
  signalId: string | undefined,
  io: Output,
  ranHere = false,
): Promise<number> {
  const run = await requireRun(store, runId);
  if (FINISHED_STATUSES.has(run.status)) {
    io.err(`${io.errStyle.red("error:")} Run ${runId} is ${run.status}: it no longer takes events.\n`);
    return EXIT.failed;
  }
  const { delivered } = await sendEvent(runId, eventName, payload, optional("signalId", signalId));
  const name = clean(JSON.stringify(eventName));
  if (!delivered) {
    io.err(
      `${io.errStyle.red("error:")} Event ${name} with signal id ${clean(JSON.stringify(signalId))} was delivered to run ${runId} before: it is not delivered again.\n`,
    );
    return EXIT.failed;
  }
  const after = ranHere ? ((await store.getRun(runId)) ?? run) : run;
  const where =
    backend.kind !== "file" || (await fileOwner(backend))
      ? ""
      : ranHere
        ? ` Its code ran here: the run is ${io.style.status(after.status)}${FINISHED_STATUSES.has(after.status) ? "" : `, and your app carries it on when it next starts on ${backend.dir}`}.`
        : ` It is stored: no app owns ${backend.dir} now, so the run gets it when your app next starts there (or pass --workflows to run it here now).`;
  io.out(`Event ${name} delivered to run ${io.style.bold(runId)}.${where}\n`);
  return EXIT.ok;
}

/** `runs retry` */
export async function retryCommand(
  store: EventStore,
  actions: RunActions,
  runId: string,
  io: Output,
): Promise<number> {
  const before = await requireRun(store, runId);
  if (before.status !== "failed") {
    io.err(
      `${io.errStyle.red("error:")} Run ${runId} is ${before.status}: only a failed run can be retried (it goes on from its failed step).\n`,
    );
    return EXIT.failed;
  }
  const carrier = await actions.retry(runId);
  const after = (await store.getRun(runId)) ?? before;
  io.out(`Run ${io.style.bold(runId)} is ${io.style.status(after.status)} (it was failed).\n`);
  if (FINISHED_STATUSES.has(after.status)) return after.status === "failed" ? EXIT.failed : EXIT.ok;
  if (carrier) io.out(`${io.style.dim(carrier)}\n`);
  return EXIT.ok;
}

function indent(text: string, width = 2): string {
  return " ".repeat(width) + hangingIndent(text, width);
}

/** A stack's frames, without its first line (the message, already printed). */
function stackBelowMessage(stack: string | undefined): string {
  if (!stack) return "";
  const lines = stack.split("\n");
  const firstFrame = lines.findIndex((line) => /^\s+at /.test(line));
  return (firstFrame === -1 ? lines.slice(1) : lines.slice(firstFrame)).map((line) => line.trim()).join("\n");
}
