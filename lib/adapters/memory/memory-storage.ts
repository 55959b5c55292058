import { VersionConflictError } from "../../core/errors.ts";
import { acceptAppend, type WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import type {
  CommitResult,
  CreateRunResult,
  EventStore,
  NewRun,
  RunPage,
  RunPatch,
  RunQuery,
  RunRecord,
  StepOutcome,
} from "../../ports/event-store.ts";
import { inboxIds } from "../../ports/inbox.ts";
import { newestFirst, pageOf } from "../../ports/run-cursor.ts";
import { TagIndex } from "./tag-index.ts";

/** The run document after a commit: `result` and `error` are the patch's (absent in the patch, absent here). */
export function applyPatch(run: RunRecord, patch: RunPatch, version: number): RunRecord {
  const { result: _result, error: _error, ...rest } = run;
  return { ...rest, ...patch, version };
}

/** The key of one outcome: a step attempt, or a cancellation, an event or a child result (attempt 1). */
export const outcomeKey = (stepId: string, attempt: number) => `${stepId}\u0000${attempt}`;

/**
 * The outcome an event of the log consumed, if it consumed one: a step attempt's result, a cancellation
 * request, a delivered event (its signal id) or a child's result (see `inboxIds`).
 */
export function consumedOutcomeKey(event: WorkflowEvent): string | undefined {
  switch (event.type) {
    case "step_completed":
    case "step_failed":
    case "step_retrying":
      return outcomeKey(event.stepId, event.attempt);
    case "cancel_requested":
      return outcomeKey(inboxIds.cancel, 1);
    case "hook_received":
      return outcomeKey(event.signalId, 1);
    case "child_completed":
    case "child_failed":
      return outcomeKey(inboxIds.child(event.childId), 1);
    default:
      return undefined;
  }
}

/** What a durable store did with an outcome: stored it, or found one stored first (`existing`, when still pending). */
export type PersistedOutcome = { stored: true } | { stored: false; existing?: StepOutcome };

/** A run held in memory: its document, its log, and the outcomes its log has consumed. */
export interface RunState {
  run: RunRecord;
  events: WorkflowEvent[];
  /** Outcome keys the log has consumed, with the event that did: a repeated delivery finds them here. */
  consumed: Map<string, WorkflowEvent>;
}

/** A run's state built from its document and its log. */
export function runState(run: RunRecord, events: WorkflowEvent[]): RunState {
  const state: RunState = { run, events, consumed: new Map() };
  for (const event of events) {
    const key = consumedOutcomeKey(event);
    if (key !== undefined) state.consumed.set(key, event);
  }
  return state;
}

/**
 * Keeps everything in this process's memory: fast, and gone when the process exits. Also the index
 * that {@link FileStorage} keeps in front of its files.
 *
 * What it is given it keeps as it is, without a copy: the events of a commit (those the engine built are
 * taken unvalidated, see `acceptEvents`; the engine never changes an event or an outcome once it handed it
 * over), new runs and outcomes. What it hands out to readers (runs, logs, single outcomes) are copies; the
 * outcomes it lists for the engine are not.
 * @example
 * import { MemoryStorage } from "tsworkflow/local";
 * const storage = new MemoryStorage();
 */
export class MemoryStorage implements EventStore {
  /** Runs in memory (for {@link FileStorage}: the unfinished ones, and finished ones until they are synced). */
  protected readonly states = new Map<string, RunState>();
  /** Outcomes stored and not yet consumed by the log, by run. */
  protected readonly outcomes = new Map<string, Map<string, StepOutcome>>();
  protected readonly idempotencyKeys = new Map<string, string>();
  /** The runs of each tag (those in memory; {@link FileStorage} adds the finished ones it lists). */
  protected readonly tagIndex = new TagIndex();
  private readonly creating = new Map<string, Promise<CreateRunResult>>();

  async createRun(newRun: NewRun): Promise<CreateRunResult> {
    assertRunId(newRun.run.runId);
    const key = newRun.run.idempotencyKey;
    if (key === undefined) return this.insertRun(newRun);
    const existingId = this.idempotencyKeys.get(key);
    const existing = existingId === undefined ? undefined : this.state(existingId)?.run;
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
    const state = this.state(runId);
    return state && structuredClone(state.run);
  }

  async listRuns(query: RunQuery = {}): Promise<RunPage> {
    const matching: RunRecord[] = [];
    const candidates = query.tags
      ? this.tagIndex.runsWith(query.tags).flatMap((runId) => this.states.get(runId) ?? [])
      : this.states.values();
    for (const { run } of candidates) {
      if (query.status && run.status !== query.status) continue;
      if (query.workflowName && run.workflowName !== query.workflowName) continue;
      matching.push(run);
    }
    return structuredClone(pageOf(matching.sort(newestFirst), query));
  }

  async getEvents(runId: string): Promise<WorkflowEvent[]> {
    assertRunId(runId);
    return structuredClone(this.state(runId)?.events ?? []);
  }

  async commit(
    runId: string,
    expectedVersion: number,
    events: readonly WorkflowEvent[],
    patch: RunPatch,
  ): Promise<CommitResult> {
    assertRunId(runId);
    const state = this.state(runId);
    if (!state || state.run.version !== expectedVersion)
      throw new VersionConflictError(runId, expectedVersion);
    const valid = acceptAppend(runId, expectedVersion, events);
    const before = state.run;
    // Claim the version before any await, so a racing commit in this process sees it taken.
    state.run = applyPatch(before, patch, expectedVersion + valid.length);
    try {
      // A store that writes synchronously returns nothing: no await, no extra turn per commit.
      const persisting = this.persistCommit(runId, expectedVersion, valid, patch);
      if (persisting) await persisting;
    } catch (error) {
      state.run = before;
      throw error;
    }
    state.events.push(...valid);
    if (patch.tags) this.tagIndex.set(runId, patch.tags);
    this.consume(state, valid);
    this.committed(state, before);
    // Listing the outcomes here costs a map lookup: the engine may as well always look (an outcome that
    // arrives during an inline step is then seen before the run's next step starts).
    return {};
  }

  async putOutcome(outcome: StepOutcome): Promise<boolean> {
    const key = outcomeKey(outcome.stepId, outcome.attempt);
    // Once in the log, an outcome is consumed: a later one for the same key (a repeated event id) is a duplicate.
    if (this.outcomes.get(outcome.runId)?.has(key) || this.state(outcome.runId)?.consumed.has(key))
      return false;
    // Claimed before any await, so that a racing put of the same key in this process sees it taken.
    const pending = this.pendingOf(outcome.runId);
    pending.set(key, outcome);
    let persisted: PersistedOutcome;
    try {
      persisted = await this.persistOutcome(outcome);
    } catch (error) {
      pending.delete(key);
      throw error;
    }
    if (persisted.stored) return true;
    // Another process stored this key first (its outcome is the one that counts), or the log consumed it.
    if (persisted.existing) pending.set(key, persisted.existing);
    else pending.delete(key);
    return false;
  }

  async getOutcome(runId: string, stepId: string, attempt: number): Promise<StepOutcome | undefined> {
    const key = outcomeKey(stepId, attempt);
    const outcome = this.outcomes.get(runId)?.get(key);
    if (outcome) return structuredClone(outcome);
    // Consumed outcomes are dropped from memory; the log still answers for them.
    const event = this.state(runId)?.consumed.get(key);
    return event && outcomeFromEvent(runId, stepId, attempt, event);
  }

  async listOutcomes(runId: string): Promise<StepOutcome[]> {
    const pending = this.outcomes.get(runId);
    return pending ? [...pending.values()] : [];
  }

  async close(): Promise<void> {}

  /** The run's state in memory, or undefined. {@link FileStorage} loads the runs it does not hold. */
  protected state(runId: string): RunState | undefined {
    return this.states.get(runId);
  }

  private async insertRun({ run, startedEvent }: NewRun): Promise<CreateRunResult> {
    const [event] = acceptAppend(run.runId, 0, [startedEvent]) as [WorkflowEvent];
    if (this.state(run.runId)) throw new VersionConflictError(run.runId, 0);
    await this.persistCreate(run, event);
    this.index(runState(run, [event]));
    return { created: true, run: structuredClone(run) };
  }

  /** Hook for durable subclasses: called before a run is indexed. */
  protected async persistCreate(_run: RunRecord, _event: WorkflowEvent): Promise<void> {}

  /** Hook for durable subclasses: called before a commit becomes visible (a promise only when it waits for something). */
  protected persistCommit(
    _runId: string,
    _expectedVersion: number,
    _events: WorkflowEvent[],
    _patch: RunPatch,
  ): Promise<void> | undefined {
    return undefined;
  }

  /** Hook for durable subclasses: called once a commit is visible (`before`: the document it replaced). */
  protected committed(_state: RunState, _before: RunRecord): void {}

  /**
   * Hook for durable subclasses: makes an outcome durable before it counts, or says why it does not
   * count (another process stored one with the same key first, or the log has consumed the key).
   */
  protected async persistOutcome(_outcome: StepOutcome): Promise<PersistedOutcome> {
    return { stored: true };
  }

  /** Adds a run to the in-memory index (also used when loading from disk). */
  protected index(state: RunState): void {
    const { run } = state;
    this.states.set(run.runId, state);
    this.consume(state, state.events);
    if (run.idempotencyKey !== undefined) this.idempotencyKeys.set(run.idempotencyKey, run.runId);
    if (run.tags) this.tagIndex.set(run.runId, run.tags);
  }

  /** The outcomes stored for a run and not yet in its log. */
  protected pendingOf(runId: string): Map<string, StepOutcome> {
    let pending = this.outcomes.get(runId);
    if (!pending) {
      pending = new Map();
      this.outcomes.set(runId, pending);
    }
    return pending;
  }

  /** Outcomes now in the log leave the pending set; the log's events answer for them from now on. */
  private consume(state: RunState, events: WorkflowEvent[]): void {
    const pending = this.outcomes.get(state.run.runId);
    for (const event of events) {
      const key = consumedOutcomeKey(event);
      if (key === undefined) continue;
      pending?.delete(key);
      state.consumed.set(key, event);
    }
    if (pending?.size === 0) this.outcomes.delete(state.run.runId);
  }
}

/** A consumed step outcome, rebuilt from the event that consumed it (other kinds are not asked for). */
function outcomeFromEvent(
  runId: string,
  stepId: string,
  attempt: number,
  event: WorkflowEvent,
): StepOutcome | undefined {
  const base = { runId, stepId, attempt, recordedAt: event.timestamp };
  if (event.type === "step_completed") return { ...base, ok: true, result: structuredClone(event.result) };
  if (event.type === "step_failed" || event.type === "step_retrying")
    return { ...base, ok: false, error: { ...event.error } };
  return undefined;
}
