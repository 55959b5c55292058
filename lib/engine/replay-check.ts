import { describe, InvalidEventError, NonDeterminismError } from "../core/errors.ts";
import { type EventDraft, parseEvents, type WorkflowEvent } from "../core/events.ts";
import { optional } from "../core/optional.ts";
import { serializeError } from "../core/serialization.ts";
import type { AnyWorkflow } from "../core/workflow.ts";
import { RunExecution } from "./execution.ts";

/** What replaying one recorded run against the current code found. */
export type ReplayReport =
  | { ok: true; runId: string; workflowName: string; events: number }
  | {
      ok: false;
      runId: string;
      workflowName: string;
      events: number;
      /**
       * The number (`seq`) of the event where the code and the log part: the one that recorded the call the
       * code now makes otherwise (another call, other arguments), or the event being replayed.
       */
      seq: number;
      /** What the log has and what the code does now, or the error the workflow threw (see `error`). */
      message: string;
      /**
       * The error the workflow threw on replay before the point where its log goes on (an invalid `patched()`
       * id, a bug in the new code, a step failure the code no longer catches): the cause of the mismatch.
       */
      error?: { name: string; code?: string; message: string };
    };

/**
 * Replays a recorded run's log against the workflow's current code, as an activation would after a
 * deploy, without running any step or writing anything: recorded results resolve the calls, and the
 * first call that the log does not have in that place (another step, a removed sleep, a changed order or
 * argument) is reported with the event number; when the workflow threw before that point, with its error.
 * Calls past the end of the log are new work, not a mismatch: adding steps after the point every run has
 * reached is a compatible change.
 * @param events the log, as `getEvents(runId)` or `tsworkflow runs events <id> --json` gives it
 * @example
 * import { readFileSync } from "node:fs";
 * import { replayHistory } from "tsworkflow/testing";
 * import { onboarding } from "./workflows.ts";
 * const report = await replayHistory(onboarding, JSON.parse(readFileSync("history.json", "utf8")));
 * if (!report.ok) throw new Error(`event #${report.seq}: ${report.message}`);
 * @throws InvalidEventError when `events` is not a tsworkflow log, saying what it is (e.g. the JSON of
 *   `tsworkflow runs show <id> --json` or `runs list --json`)
 */
export async function replayHistory(
  workflow: AnyWorkflow,
  events: readonly unknown[],
): Promise<ReplayReport> {
  const other = notALog(events);
  if (other)
    throw new InvalidEventError(
      `replayHistory() expects a run's log: the array of events that \`tsworkflow runs events <id> --json\` prints (or getEvents(runId) returns). It got ${other}. Save the log with \`tsworkflow runs events <id> --json > history.json\`.`,
    );
  return (await replayRun(workflow, events)).report;
}

/**
 * What `value` is when it is JSON of another kind than a run's log (the JSON of `runs show` or `runs list`
 * is an easy slip for that of `runs events`), else undefined: a log's own events are checked on replay.
 */
function notALog(value: unknown): string | undefined {
  if (Array.isArray(value))
    return isRunDocument(value[0])
      ? "an array of run documents: the runs of a page that `tsworkflow runs list --json` prints"
      : undefined;
  if (typeof value !== "object" || value === null) return describe(value);
  const keys = Object.keys(value);
  const listed = `keys ${keys.slice(0, 6).join(", ")}${keys.length > 6 ? ", …" : ""}`;
  if (Array.isArray((value as { runs?: unknown }).runs))
    return `a page of runs (${listed}): what \`tsworkflow runs list --json\` prints`;
  if (isRunDocument(value))
    return `a run document (${listed}): what \`tsworkflow runs show <id> --json\` prints`;
  return `an object with ${listed}`;
}

const isRunDocument = (value: unknown) =>
  typeof value === "object" && value !== null && "runId" in value && "status" in value && !("type" in value);

/**
 * {@link replayHistory}, and how the replayed workflow ended when its calls match the log: the terminal
 * event a run would append (`workflow_completed` with its result, `workflow_failed`…), or undefined when it
 * still waits (the engine fails a run that waits at its `maxDuration` deadline). The test environment
 * compares it with the run's own end.
 * @internal
 */
export async function replayRun(
  workflow: AnyWorkflow,
  events: readonly unknown[],
): Promise<{ report: ReplayReport; end?: EventDraft | undefined }> {
  const log: WorkflowEvent[] = parseEvents(events, "the history to replay");
  const [first] = log;
  if (first?.type !== "workflow_started")
    throw new InvalidEventError("The history to replay does not begin with workflow_started.");
  const base = { runId: first.runId, workflowName: first.workflowName, events: log.length };
  if (first.workflowName !== workflow.name)
    return {
      report: {
        ...base,
        ok: false,
        seq: 1,
        message: `The log is a run of workflow "${first.workflowName}", not of "${workflow.name}".`,
      },
    };
  const lastEventAt = Date.parse((log[log.length - 1] as WorkflowEvent).timestamp);
  try {
    const replayed = cancelledBeforeItBegan(log) ? log.slice(0, -2) : log;
    // Nothing is stored: payloads were checked against their store's limit (10 MB with S3 on AWS) when the run ran.
    const execution = await RunExecution.replay(workflow, replayed, {
      now: lastEventAt,
      maxPayloadBytes: Number.POSITIVE_INFINITY,
    });
    if (!execution.nonDeterminism) return { report: { ...base, ok: true }, end: execution.terminalDraft() };
    const mismatch = { ...base, ok: false as const, seq: execution.mismatchSeq ?? execution.version };
    const { settled } = execution;
    if (settled && !settled.ok) {
      const { name, code, message } = serializeError(settled.error);
      return {
        report: {
          ...mismatch,
          message: `The workflow threw ${name}${code ? ` (${code})` : ""}: ${message}`,
          error: { name, ...optional("code", code), message },
        },
      };
    }
    return { report: { ...mismatch, message: execution.nonDeterminism.message } };
  } catch (error) {
    if (!(error instanceof NonDeterminismError)) throw error;
    return { report: { ...base, ok: false, seq: 1, message: error.message } };
  }
}

/**
 * True for the log of a run cancelled while it waited to begin (a new run in line, or one that `retryRun` put
 * back in line): its cancellation follows its start or its retry at once, and its workflow ran nothing after
 * that, so a replay stops before it.
 */
function cancelledBeforeItBegan(log: readonly WorkflowEvent[]): boolean {
  const [before, cancel, end] = log.slice(-3).map((event) => event.type);
  return (
    (before === "workflow_started" || before === "workflow_retried") &&
    cancel === "cancel_requested" &&
    end === "workflow_cancelled"
  );
}
