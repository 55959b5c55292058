import { RunNotFoundError } from "../core/errors.ts";
import { assertRunId } from "../core/ids.ts";
import { defaultRegistry } from "../core/registry.ts";
import { type ReplayReport, replayHistory } from "../engine/replay-check.ts";
import { clean, renderTable } from "../inspect/format.ts";
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
  /** @default 100 */
  limit?: number;
  json?: boolean;
}

/**
 * `tsworkflow replay`: replays recorded runs against the code of `--workflows` without running a step or
 * writing anything, and prints ok or the first mismatch for each. Exits 1 on any mismatch (a deploy gate).
 */
export async function replayCommand(
  store: EventStore,
  selection: ReplaySelection,
  io: Output,
): Promise<number> {
  await loadWorkflows(selection.workflows);
  const reports: ReplayReport[] = [];
  for (const run of await selectRuns(store, selection)) {
    // A run replays against the version of the code it started with (see `workflow(..., { version })`).
    const definition = defaultRegistry.findWorkflowVersion(run.workflowName, run.workflowVersion);
    const events = await store.getEvents(run.runId);
    reports.push(
      definition
        ? await replayHistory(definition, events)
        : {
            ok: false,
            runId: run.runId,
            workflowName: run.workflowName,
            events: events.length,
            seq: 1,
            message:
              run.workflowVersion === undefined
                ? `No workflow named "${run.workflowName}" without a version in ${selection.workflows}: removing a workflow strands its runs.`
                : `No version "${run.workflowVersion}" of workflow "${run.workflowName}" in ${selection.workflows}: keep it registered until its runs have finished.`,
          },
    );
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
    io.err(`${reports.length} runs replayed, ${failed} ${failed === 1 ? "mismatch" : "mismatches"}.\n`);
  }
  return failed > 0 ? EXIT.failed : EXIT.ok;
}

async function selectRuns(store: EventStore, selection: ReplaySelection): Promise<RunRecord[]> {
  if (selection.run) {
    assertRunId(selection.run);
    const run = await store.getRun(selection.run);
    if (!run) throw new RunNotFoundError(selection.run);
    return [run];
  }
  const limit = selection.limit ?? 100;
  const runs: RunRecord[] = [];
  for (const status of selection.statuses ?? [undefined]) {
    let cursor: string | undefined;
    do {
      const query: RunQuery = {
        limit: limit - runs.length,
        ...(status ? { status } : {}),
        ...(selection.workflow ? { workflowName: selection.workflow } : {}),
        ...(cursor ? { cursor } : {}),
      };
      const page = await store.listRuns(query);
      runs.push(...page.runs);
      cursor = page.nextCursor;
    } while (cursor && runs.length < limit);
    if (runs.length >= limit) break;
  }
  return runs;
}
