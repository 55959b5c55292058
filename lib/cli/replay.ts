import { RunNotFoundError } from "../core/errors.ts";
import { assertRunId } from "../core/ids.ts";
import { defaultRegistry } from "../core/registry.ts";
import { type ReplayReport, replayHistory } from "../engine/replay-check.ts";
import { clean, counted, renderTable } from "../inspect/format.ts";
import type { EventStore, RunQuery, RunRecord, RunStatus } from "../ports/event-store.ts";
import { loadWorkflows } from "./backend.ts";
import { EXIT } from "./errors.ts";
import type { Output } from "./runs.ts";

/** Which recorded runs `tsworkflow replay` checks. */
export interface ReplaySelection {
  /** The module that defines the workflows, as the new code has them. */
  workflows: string;
  run?: string;
  workflow?: string;
  statuses?: RunStatus[];
  /** At most this many runs; the rest that match are counted as not checked. @default every matching run */
  limit?: number;
  json?: boolean;
}

/** Runs listed per page while replaying, and how often progress is printed on a long check. */
const PAGE_SIZE = 100;
const PROGRESS_EVERY = 1_000;

/**
 * `tsworkflow replay`: replays recorded runs against the code of `--workflows` without running a step or
 * writing anything, and prints ok or the first mismatch for each. Exits 1 on any mismatch (a deploy gate).
 * Every matching run is checked unless `--limit` says otherwise, in which case the summary says that
 * more runs matched and were not checked.
 */
export async function replayCommand(
  store: EventStore,
  selection: ReplaySelection,
  io: Output,
): Promise<number> {
  await loadWorkflows(selection.workflows);
  const reports: ReplayReport[] = [];
  const limit = selection.limit ?? Number.POSITIVE_INFINITY;
  let unchecked = false;
  for await (const run of matchingRuns(store, selection)) {
    if (reports.length >= limit) {
      unchecked = true;
      break;
    }
    reports.push(await replayRun(store, run, selection.workflows));
    if (reports.length % PROGRESS_EVERY === 0)
      io.err(io.errStyle.dim(`${reports.length} runs replayed...\n`));
  }
  const failed = reports.filter((report) => !report.ok).length;
  if (selection.json) io.out(`${JSON.stringify(reports, null, 2)}\n`);
  else if (reports.length === 0) io.out(`${io.style.dim("No runs to replay.")}\n`);
  else {
    const rows = reports.map((report) => [
      report.runId,
      clean(report.workflowName),
      String(report.events),
      report.ok ? io.style.green("ok") : io.style.red(clean(`event #${report.seq}: ${report.message}`)),
    ]);
    io.out(`${renderTable(["RUN ID", "WORKFLOW", "EVENTS", "REPLAY"], rows, io.style)}\n`);
  }
  if (reports.length > 0)
    io.err(`${counted(reports.length, "run")} replayed, ${counted(failed, "mismatch", "mismatches")}.\n`);
  if (unchecked)
    io.err(
      io.errStyle.yellow(
        `More runs match and were not checked: the check stopped at --limit ${selection.limit}. Leave out --limit to check every matching run before a deploy.\n`,
      ),
    );
  return failed > 0 ? EXIT.failed : EXIT.ok;
}

async function replayRun(store: EventStore, run: RunRecord, workflows: string): Promise<ReplayReport> {
  // A run replays against the version of the code it started with (see `workflow(..., { version })`).
  const definition = defaultRegistry.findWorkflowVersion(run.workflowName, run.workflowVersion);
  const events = await store.getEvents(run.runId);
  if (definition) return replayHistory(definition, events);
  return {
    ok: false,
    runId: run.runId,
    workflowName: run.workflowName,
    events: events.length,
    seq: 1,
    message:
      run.workflowVersion === undefined
        ? `No workflow named "${run.workflowName}" without a version in ${workflows}: removing a workflow strands its runs.`
        : `No version "${run.workflowVersion}" of workflow "${run.workflowName}" in ${workflows}: keep it registered until its runs have finished.`,
  };
}

/** The runs the selection names, page by page (a store of any size is never listed at once). */
async function* matchingRuns(store: EventStore, selection: ReplaySelection): AsyncGenerator<RunRecord> {
  if (selection.run) {
    assertRunId(selection.run);
    const run = await store.getRun(selection.run);
    if (!run) throw new RunNotFoundError(selection.run);
    yield run;
    return;
  }
  for (const status of selection.statuses ?? [undefined]) {
    let cursor: string | undefined;
    do {
      const query: RunQuery = {
        limit: PAGE_SIZE,
        ...(status ? { status } : {}),
        ...(selection.workflow ? { workflowName: selection.workflow } : {}),
        ...(cursor ? { cursor } : {}),
      };
      const page = await store.listRuns(query);
      yield* page.runs;
      cursor = page.nextCursor;
    } while (cursor);
  }
}
