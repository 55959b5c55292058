import { VersionConflictError } from "../../core/errors.ts";
import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import type {
  CreateRunResult,
  EventStore,
  NewRun,
  RunPage,
  RunPatch,
  RunQuery,
  RunRecord,
  StepOutcome,
} from "../../ports/event-store.ts";
import { newestFirst, pageOf } from "../../ports/run-cursor.ts";

/** The run document after a commit: `result` and `error` are the patch's (absent in the patch, absent here). */
export function applyPatch(run: RunRecord, patch: RunPatch, version: number): RunRecord {
  const { result: _result, error: _error, ...rest } = run;
  return { ...rest, ...patch, version };
}

const outcomeKey = (stepId: string, attempt: number) => `${stepId}\u0000${attempt}`;

/** A consumed outcome's events: once one of these is in the log, the outcome is no longer needed. */
const OUTCOME_EVENTS = new Set(["step_completed", "step_failed", "step_retrying"]);

/**
 * Keeps everything in this process's memory: fast, and gone when the process exits. Also the index
 * that {@link FileStorage} keeps in front of its files.
 * @example
 * import { MemoryStorage } from "tsworkflow/local";
 * const storage = new MemoryStorage();
 */
export class MemoryStorage implements EventStore {
  protected readonly runs = new Map<string, RunRecord>();
  protected readonly logs = new Map<string, WorkflowEvent[]>();
  protected readonly outcomes = new Map<string, Map<string, StepOutcome>>();
  protected readonly idempotencyKeys = new Map<string, string>();
  /** The log's outcome events by step attempt, so a duplicate step delivery is found in O(1). */
  private readonly consumed = new Map<string, Map<string, WorkflowEvent>>();
  private readonly creating = new Map<string, Promise<CreateRunResult>>();

  async createRun(newRun: NewRun): Promise<CreateRunResult> {
    assertRunId(newRun.run.runId);
    const key = newRun.run.idempotencyKey;
    if (key === undefined) return this.insertRun(newRun);
    const existingId = this.idempotencyKeys.get(key);
    const existing = existingId === undefined ? undefined : this.runs.get(existingId);
    if (existing) return { created: false, run: structuredClone(existing) };
    // Concurrent creates with one key wait for the first instead of racing it.
    const inFlight = this.creating.get(key);
    if (inFlight) return inFlight.then((first) => ({ created: false, run: first.run }));
    const creation = this.insertRun(newRun).finally(() => this.creating.delete(key));
    this.creating.set(key, creation);
    return creation;
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    assertRunId(runId);
    const run = this.runs.get(runId);
    return run && structuredClone(run);
  }

  async listRuns(query: RunQuery = {}): Promise<RunPage> {
    const matching: RunRecord[] = [];
    for (const run of this.runs.values()) {
      if (query.status && run.status !== query.status) continue;
      if (query.workflowName && run.workflowName !== query.workflowName) continue;
      matching.push(run);
    }
    return structuredClone(pageOf(matching.sort(newestFirst), query));
  }

  async getEvents(runId: string): Promise<WorkflowEvent[]> {
    assertRunId(runId);
    return structuredClone(this.logs.get(runId) ?? []);
  }

  async commit(
    runId: string,
    expectedVersion: number,
    events: WorkflowEvent[],
    patch: RunPatch,
  ): Promise<void> {
    assertRunId(runId);
    const run = this.runs.get(runId);
    if (!run || run.version !== expectedVersion) throw new VersionConflictError(runId, expectedVersion);
    const valid = events.map((event) => parseEvent(event, `run ${runId}`));
    const next = applyPatch(run, patch, expectedVersion + valid.length);
    // Claim the version before any await, so a racing commit in this process sees it taken.
    this.runs.set(runId, next);
    try {
      await this.persistCommit(runId, expectedVersion, valid, patch);
    } catch (error) {
      this.runs.set(runId, run);
      throw error;
    }
    this.logs.get(runId)?.push(...valid);
    this.forgetConsumedOutcomes(runId, valid);
  }

  async putOutcome(outcome: StepOutcome): Promise<boolean> {
    let byStep = this.outcomes.get(outcome.runId);
    if (!byStep) {
      byStep = new Map();
      this.outcomes.set(outcome.runId, byStep);
    }
    const key = outcomeKey(outcome.stepId, outcome.attempt);
    if (byStep.has(key)) return false;
    byStep.set(key, structuredClone(outcome));
    return true;
  }

  async getOutcome(runId: string, stepId: string, attempt: number): Promise<StepOutcome | undefined> {
    const outcome = this.outcomes.get(runId)?.get(outcomeKey(stepId, attempt));
    if (outcome) return structuredClone(outcome);
    // Consumed outcomes are dropped from memory; the log still answers for them.
    return this.outcomeFromLog(runId, stepId, attempt);
  }

  async listOutcomes(runId: string): Promise<StepOutcome[]> {
    return structuredClone([...(this.outcomes.get(runId)?.values() ?? [])]);
  }

  async close(): Promise<void> {}

  private async insertRun({ run, startedEvent }: NewRun): Promise<CreateRunResult> {
    const event = parseEvent(startedEvent, `run ${run.runId}`);
    if (this.runs.has(run.runId)) throw new VersionConflictError(run.runId, 0);
    await this.persistCreate(run, event);
    this.index(run, [event]);
    return { created: true, run: structuredClone(run) };
  }

  /** Hook for durable subclasses: called before a run is indexed. */
  protected async persistCreate(_run: RunRecord, _event: WorkflowEvent): Promise<void> {}

  /** Hook for durable subclasses: called before a commit becomes visible. */
  protected async persistCommit(
    _runId: string,
    _expectedVersion: number,
    _events: WorkflowEvent[],
    _patch: RunPatch,
  ): Promise<void> {}

  /** Adds a run and its log to the in-memory index (also used when loading from disk). */
  protected index(run: RunRecord, events: WorkflowEvent[]): void {
    this.runs.set(run.runId, run);
    this.logs.set(run.runId, events);
    this.forgetConsumedOutcomes(run.runId, events);
    if (run.idempotencyKey !== undefined) this.idempotencyKeys.set(run.idempotencyKey, run.runId);
  }

  /** Outcomes now in the log leave the pending set; the log's events answer for them from now on. */
  private forgetConsumedOutcomes(runId: string, events: WorkflowEvent[]): void {
    const byStep = this.outcomes.get(runId);
    let consumed = this.consumed.get(runId);
    for (const event of events) {
      if (!OUTCOME_EVENTS.has(event.type) || !("stepId" in event)) continue;
      const key = outcomeKey(event.stepId, event.attempt);
      byStep?.delete(key);
      if (!consumed) {
        consumed = new Map();
        this.consumed.set(runId, consumed);
      }
      consumed.set(key, event);
    }
    if (byStep?.size === 0) this.outcomes.delete(runId);
  }

  private outcomeFromLog(runId: string, stepId: string, attempt: number): StepOutcome | undefined {
    const event = this.consumed.get(runId)?.get(outcomeKey(stepId, attempt));
    if (!event) return undefined;
    const base = { runId, stepId, attempt, recordedAt: event.timestamp };
    if (event.type === "step_completed") return { ...base, ok: true, result: structuredClone(event.result) };
    if (event.type === "step_failed" || event.type === "step_retrying")
      return { ...base, ok: false, error: { ...event.error } };
    return undefined;
  }
}
