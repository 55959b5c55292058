import { NonDeterminismError, TsWorkflowError } from "../core/errors.ts";
import type { WorkflowEvent } from "../core/events.ts";
import type { Registry } from "../core/registry.ts";
import { type ReplayReport, replayRun } from "../engine/replay-check.ts";
import type { EventStore } from "../ports/event-store.ts";
import { REPLAY_PASSES, withOtherClockAndRandom } from "./other-clock-and-random.ts";
import { endDifference } from "./replayed-end.ts";
import { formatTimeline } from "./timeline.ts";

type Mismatch = Extract<ReplayReport, { ok: false }>;

/**
 * What `NonDeterminismError` says after what differs, for a run whose code changed while it was in flight
 * (keep the calls stable, or guard the change with `patched()` or a new version). A test replays the run
 * with the same code: that advice does not apply there.
 */
const CODE_CHANGE_ADVICE = new NonDeterminismError("").message;

/** What differs, as the replay found it, without the advice for changed code; one sentence. */
function whatDiffers(message: string): string {
  const detail = message.endsWith(CODE_CHANGE_ADVICE)
    ? message.slice(0, -CODE_CHANGE_ADVICE.length)
    : message;
  return /[.!?]$/.test(detail) ? detail : `${detail}.`;
}

/** What a replay check found in one run: its report and the run's timeline. */
interface Finding {
  mismatch: Mismatch;
  status: string;
  timeline: string;
}

/** Where a replay parts from the run's log: a call that differs, or else how the run ends. */
function mismatchOf(
  { report, end }: Awaited<ReturnType<typeof replayRun>>,
  events: readonly WorkflowEvent[],
): Mismatch | undefined {
  if (!report.ok) return report;
  const difference = endDifference(events, end);
  return difference && { ...report, ok: false, ...difference };
}

/**
 * A run that finished in a test environment does not replay: replaying its log with the same code makes
 * other calls (or throws, or ends with another result or error), as it would wherever the run is replayed
 * in production (after a crash or a restart, on another worker or Lambda instance), where the run would
 * fail with `NonDeterminismError` or silently end otherwise. Thrown by `run.result()` and `env.close()`;
 * `createTestEnvironment({ replayCheck: false })` turns the check off.
 */
export class ReplayMismatchError extends TsWorkflowError {
  override name = "ReplayMismatchError";
  /** The run that does not replay. */
  readonly runId: string;
  /** The event (`seq`) of its log where the replay parts from it. */
  readonly seq: number;
  /**
   * @param mismatch where the replay parts from the log: a call (as `replayHistory` reports it) or the end
   * @param status the run's status
   * @param timeline the run's timeline (see `formatTimeline`)
   * @param others the ids of other runs of the environment that do not replay either
   */
  constructor(
    mismatch: Extract<ReplayReport, { ok: false }>,
    status: string,
    timeline: string,
    others: readonly string[] = [],
  ) {
    const { runId, workflowName, seq, message } = mismatch;
    const more =
      others.length > 0
        ? `\n\nThese runs of the test environment do not replay either: ${others.join(", ")}.`
        : "";
    super(
      "REPLAY_MISMATCH",
      `Run ${runId} of ${workflowName} is ${status} in this test environment, but a replay of its log with the same code parts from it at event ${seq}: ${whatDiffers(message)}

The code did not change between the run and its replay: the cause is non-determinism in the workflow code, not a code change. A run is replayed from its log whenever no worker holds it in memory: after a crash or a restart, on another Redis worker, on another Lambda instance. There this run would fail with NonDeterminismError, or silently end with another result or error. The usual cause is workflow code that uses Date.now(), new Date() or Math.random(), whose values differ on replay (this check replays with other ones). Use now() and random() from "tsworkflow" instead, which give the same values on every replay, or get such values in a step. A test that does this on purpose can turn the check off: createTestEnvironment({ replayCheck: false }).${more}

${timeline}`,
    );
    this.runId = runId;
    this.seq = seq;
  }
}

/**
 * The replay check of a test environment: each run that finishes is replayed against its own log with the
 * environment's code (running no step, writing nothing), and a mismatch is reported once, by the first of
 * `run.result()` or `env.close()` to look.
 */
export class ReplayChecks {
  private readonly checks = new Map<string, { found: Promise<Finding | undefined>; reported: boolean }>();

  constructor(
    private readonly storage: EventStore,
    private readonly registry: Registry,
  ) {}

  /** Starts the check of a run that has just finished (again, after a retry: the new check replaces the old). */
  check(runId: string): void {
    const found = this.replay(runId);
    found.catch(() => {}); // the error comes out where the check is awaited
    this.checks.set(runId, { found, reported: false });
  }

  /** Waits for every check started so far (they read the storage: before it is closed). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.checks.values()].map((check) => check.found));
  }

  /**
   * Throws {@link ReplayMismatchError} for the first of these runs (every run checked, when not given)
   * whose mismatch was not reported yet, naming the others; they count as reported.
   */
  async throwUnreported(runIds: readonly string[] = [...this.checks.keys()]): Promise<void> {
    const findings: Finding[] = [];
    for (const runId of runIds) {
      const check = this.checks.get(runId);
      if (!check || check.reported) continue;
      const finding = await check.found;
      if (finding && !check.reported) findings.push(finding);
      check.reported = true;
    }
    const [first, ...others] = findings;
    if (first)
      throw new ReplayMismatchError(
        first.mismatch,
        first.status,
        first.timeline,
        others.map((other) => other.mismatch.runId),
      );
  }

  private async replay(runId: string): Promise<Finding | undefined> {
    const [run, events] = await Promise.all([this.storage.getRun(runId), this.storage.getEvents(runId)]);
    const [started] = events;
    const last = events.at(-1);
    // A run that failed with NonDeterminismError was replayed already, and failed the test with it.
    if (
      !run ||
      started?.type !== "workflow_started" ||
      (last?.type === "workflow_failed" && last.error.code === "NON_DETERMINISM")
    )
      return undefined;
    const workflow = this.registry.findWorkflowVersion(started.workflowName, started.workflowVersion);
    if (!workflow) return undefined;
    for (const values of REPLAY_PASSES) {
      const { value, read } = await withOtherClockAndRandom(values, () => replayRun(workflow, events));
      const mismatch = mismatchOf(value, events);
      if (mismatch) return { mismatch, status: run.status, timeline: formatTimeline(run, events) };
      if (!read) return undefined; // the next pass would replay the same
    }
    return undefined;
  }
}
