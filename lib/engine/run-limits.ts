import type { WorkflowEvent } from "../core/events.ts";
import { CLOCK_TICK_MS } from "../core/rate-limit.ts";
import type { AnyWorkflow } from "../core/workflow.ts";
import type { Clock } from "../ports/clock.ts";
import { type EventStore, FINISHED_STATUSES, type RunRecord } from "../ports/event-store.ts";
import type { RateAnswer, RateLimitStore } from "../ports/rate-limit-store.ts";
import type { SlotStore } from "../ports/slot-store.ts";
import type { ActivationTask } from "../ports/task-queue.ts";
import type { Timers } from "../ports/timers.ts";
import {
  admissionOf,
  type RunAdmission,
  type RunConcurrency,
  type RunRateLimit,
  recordedAdmission,
} from "./admission.ts";
import { retriedAttempts, waitsAfterRetry } from "./retry-attempt.ts";

/** Options of {@link RunLimits}. */
export interface RunLimitsOptions {
  /** Where the slots are held: one store shared by every worker the limits should span. */
  slots: SlotStore;
  /**
   * How often a pending run that waits for a slot looks again by itself (a durable timer). A run that
   * finishes wakes the first runs in line at once; this re-check only covers a wake-up that was lost
   * (a worker that died between the two).
   * @default 10,000 ms
   */
  recheckMs?: number;
  /**
   * Where the starts of `workflow(..., { rateLimit })` are counted: one store shared by every worker.
   * @default none: `start()` of a workflow that declares a rate limit throws a `ConfigurationError`
   */
  rates?: RateLimitStore;
}

/** What the engine that uses the limits gives them. */
export interface RunLimitsHost {
  readonly store: EventStore;
  /** Where a waiting run's re-check is armed (durable, on the engine's clock). */
  readonly timers: Timers;
  /** The engine's clock (ms). */
  now(): number;
  enqueueActivation(task: ActivationTask): Promise<void>;
}

/**
 * A run's slot is held from its start to its end, however long it sleeps: its lease is longer than any run.
 * A run that finished without giving its slot back (its worker died in between) has it taken back by the
 * first run in line, which checks the holders' status (see `reclaim`).
 */
const RUN_LEASE_MS = 100 * 365 * 24 * 3_600_000;

/**
 * Run concurrency (`workflow(name, fn, { concurrency })`): a run of a limited workflow starts only once it
 * holds a slot of its key; until then it stays `pending`, in line in the order runs were created (a failed
 * run that `retryRun` takes back joins the end of the line). The slot is the run's id, held until the run
 * finishes (completed, failed, cancelled, continued as new); a run that finishes wakes the first runs in
 * line through the queue, on any worker.
 */
export class RunLimits {
  private readonly slots: SlotStore;
  private readonly recheckMs: number;
  private readonly rates: RateLimitStore | undefined;
  private host: RunLimitsHost | undefined;

  /**
   * @example
   * import { Engine, MemorySlotStore, RunLimits } from "tsworkflow/engine";
   * const engine = new Engine({ store, queue, timers, runLimits: new RunLimits({ slots: new MemorySlotStore() }) });
   */
  constructor(options: RunLimitsOptions) {
    this.slots = options.slots;
    this.recheckMs = options.recheckMs ?? 10_000;
    this.rates = options.rates;
  }

  /** Whether `workflow(..., { rateLimit })` is enforced (a rate limit store was given). */
  get enforcesRates(): boolean {
    return this.rates !== undefined;
  }

  /** Called by the engine that uses these limits. */
  attach(host: RunLimitsHost): void {
    this.host = host;
  }

  private get options(): RunLimitsHost {
    if (!this.host) throw new Error("RunLimits is used before an engine attached it");
    return this.host;
  }

  /** What a new run of `definition` with `input` waits for: recorded in its `workflow_started` event. */
  admissionOf(definition: AnyWorkflow, input: unknown[]): RunAdmission {
    return admissionOf(definition, input);
  }

  /**
   * A new run takes its place in line (or its slot) when it is created, so that the lines keep creation
   * order: the concurrency line, then (once it holds its slot: a start is not counted while the run waits
   * for a slot) the rate limit's.
   */
  async join(runId: string, started: WorkflowEvent): Promise<void> {
    const admission = recordedAdmission([started]);
    if (admission?.concurrency && (await this.acquire(runId, admission.concurrency)) !== "granted") return;
    if (admission?.rateLimit) await this.takeStart(runId, admission.rateLimit);
  }

  /**
   * A run has finished: its slot goes to the next in line. Without `started` (a finished run activated
   * again: a crash may have come between its last commit and the release; a run cancelled before it began),
   * it is read from the log. A run cancelled before it ever began also gives up its place in its rate limit's
   * line, or the start it was granted and never used, and the runs behind it are woken to ask again.
   */
  async finished(runId: string, started?: WorkflowEvent): Promise<void> {
    const events = started ? [started] : await this.options.store.getEvents(runId);
    const { concurrency, rateLimit } = recordedAdmission(events) ?? {};
    if (concurrency) await this.release(runId, concurrency);
    // Its first activation would have logged what its workflow did before a cancellation (see `Engine.cancelUnbegun`).
    if (rateLimit && this.rates && events[1]?.type === "cancel_requested") {
      const { key, limit, periodMs } = rateLimit;
      await this.rates.leave(key, runId);
      // The runs behind it are a place further on: the first is told its earlier turn at once, and as many as
      // there are starts free now may start now. The others ask again at the turn they were told (no later
      // than before), and are told the rest then.
      const { started, waiting } = await this.rates.inspect(
        key,
        periodMs + CLOCK_TICK_MS,
        this.options.now(),
      );
      await this.wake(waiting.slice(0, Math.max(1, limit - started.length)));
    }
  }

  /**
   * Whether a pending run may start now: it holds a slot of its key, then its start fits in the rate limit.
   * A run that waits for a slot keeps its place and is activated again when a run of its key finishes (or
   * at the next re-check); a run that waits for its start keeps its slot and is activated again at the turn
   * the rate limit store announced. (A run cancelled while it waits never gets here: the engine ends it, and
   * `finished` gives its place up.) A failed run that `retryRun` put back in line (pending again) waits for
   * its slot only: it started once, so its start is not counted again.
   */
  async admit({ runId, status }: RunRecord, events: readonly WorkflowEvent[]): Promise<boolean> {
    const admission = recordedAdmission(events);
    if (status !== "pending" || !admission) return true;
    const { concurrency, rateLimit } = admission;
    if (concurrency && !(await this.holdsSlot(runId, concurrency))) {
      await this.activateAt(runId, this.options.now() + this.recheckMs);
      return false;
    }
    if (!rateLimit || waitsAfterRetry(events)) return this.letIn(runId, events);
    const answer = await this.takeStart(runId, rateLimit);
    if (!answer || answer.granted) {
      // The run starts as soon as it is let in.
      await this.rates?.started(rateLimit.key, runId, this.options.now());
      return true;
    }
    await this.activateAt(runId, answer.retryAt);
    return false;
  }

  /**
   * A failed run that `retryRun` put back in line (pending again, its log ending with the retry) takes its
   * place at the end of its key's line, or a slot when one is free and no run waits before it; holding one,
   * it goes on at once. Waiting, it is let in by a later activation (`admit`), as a new run is.
   */
  async rejoin(runId: string, events: readonly WorkflowEvent[]): Promise<void> {
    const concurrency = recordedAdmission(events)?.concurrency;
    if (concurrency && (await this.holdsSlot(runId, concurrency)))
      await this.beginRetriedAttempts(runId, events);
  }

  /**
   * A run let in goes on. A new run starts in the activation at hand (true). A retried run first begins the
   * attempts of its retry, then goes on in a new activation that sends them (false).
   */
  private async letIn(runId: string, events: readonly WorkflowEvent[]): Promise<boolean> {
    if (!(await this.beginRetriedAttempts(runId, events))) return true;
    await this.options.enqueueActivation({ runId, cause: { kind: "recover" } });
    return false;
  }

  /**
   * Commits the attempts a retry gives the failed steps, if the log ends with one: the run is running from
   * then on, and its log never holds an attempt that was not sent (whoever activates the run next sends it).
   * @returns whether there were any
   */
  private async beginRetriedAttempts(runId: string, events: readonly WorkflowEvent[]): Promise<boolean> {
    const timestamp = new Date(this.options.now()).toISOString();
    const attempts = retriedAttempts(events, timestamp);
    if (attempts.length === 0) return false;
    await this.options.store.commit(runId, events.length, attempts, {
      status: "running",
      updatedAt: timestamp,
    });
    return true;
  }

  /** Asks for the run's start under its rate limit (undefined without a rate limit store: no limit). */
  private async takeStart(
    runId: string,
    { key, limit, periodMs }: RunRateLimit,
  ): Promise<RateAnswer | undefined> {
    return this.rates?.take({
      key,
      limit,
      periodMs: periodMs + CLOCK_TICK_MS,
      holder: runId,
      now: this.options.now(),
    });
  }

  private async holdsSlot(runId: string, concurrency: RunConcurrency): Promise<boolean> {
    if ((await this.acquire(runId, concurrency)) === "granted") return true;
    return (await this.reclaim(runId, concurrency)) && (await this.acquire(runId, concurrency)) === "granted";
  }

  /** A durable timer that activates the run again (to ask once more). */
  private async activateAt(runId: string, fireAt: number): Promise<void> {
    const now = this.options.now();
    // A fresh timer id each time: a queue may drop the same id while the timer that fired it still runs.
    await this.options.timers.schedule({
      runId,
      timerId: `run-limits:${now}`,
      fireAt,
      task: { runId, cause: { kind: "wake" } },
    });
  }

  /** Gives back the run's slot (or its place in line) and wakes the runs whose turn has come. */
  async release(runId: string, concurrency: RunConcurrency): Promise<void> {
    await this.slots.release(concurrency.key, runId, runId);
    const { holding, waiting } = await this.slots.inspect(concurrency.key, this.options.now());
    await this.wake(waiting.slice(0, Math.max(0, concurrency.limit - holding.length)));
  }

  /** Activates waiting runs at once, to ask for their slot or their start again. */
  private async wake(runIds: readonly string[]): Promise<void> {
    await Promise.all(
      runIds.map((runId) => this.options.enqueueActivation({ runId, cause: { kind: "wake" } })),
    );
  }

  /**
   * Takes the slots back from runs of the key that finished (or are gone) without releasing them. Only the
   * first run in line does it, so that a long line costs one look at the holders per re-check.
   * @returns whether a slot was taken back
   */
  private async reclaim(runId: string, concurrency: RunConcurrency): Promise<boolean> {
    const { store } = this.options;
    const { holding, waiting } = await this.slots.inspect(concurrency.key, this.options.now());
    if (waiting[0] !== runId) return false;
    let freed = false;
    for (const holder of holding) {
      const run = await store.getRun(holder);
      if (run && !FINISHED_STATUSES.has(run.status)) continue;
      await this.slots.release(concurrency.key, holder, holder);
      freed = true;
    }
    return freed;
  }

  private acquire(runId: string, { key, limit }: RunConcurrency) {
    const now = this.options.now();
    // The run's id is its token too: every activation of the run, on any worker, holds the same slot.
    return this.slots.acquire({ key, holder: runId, token: runId, limit, leaseMs: RUN_LEASE_MS, now });
  }
}

/**
 * Takes the slots of active runs back, then the places of pending runs in line order, for a slot store
 * that does not outlive its process (the embedded runtime's `MemorySlotStore`): called at start-up, before
 * the runs are activated again.
 */
export async function restoreRunSlots(store: EventStore, slots: SlotStore, clock: Clock): Promise<void> {
  for (const status of ["running", "suspended", "pending"] as const) {
    const runs: { runId: string; concurrency: RunConcurrency; joinedAt: string }[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listRuns({ status, limit: 500, ...(cursor ? { cursor } : {}) });
      for (const run of page.runs) {
        const started = (await store.getEvents(run.runId))[0];
        if (started?.type === "workflow_started" && started.concurrency)
          runs.push({ runId: run.runId, concurrency: started.concurrency, joinedAt: run.updatedAt });
      }
      cursor = page.nextCursor;
    } while (cursor);
    // Pages come newest first; the line is in the order the runs joined it: a new run at its creation, a
    // failed run that `retryRun` put back in line at its retry (a pending run's last update).
    runs.sort((a, b) => (a.joinedAt < b.joinedAt ? -1 : a.joinedAt > b.joinedAt ? 1 : 0));
    for (const { runId, concurrency } of runs) {
      // Active runs hold their slot whatever the limit says now: they started under it.
      const limit = status === "pending" ? concurrency.limit : Number.MAX_SAFE_INTEGER;
      await slots.acquire({
        key: concurrency.key,
        holder: runId,
        token: runId,
        limit,
        leaseMs: RUN_LEASE_MS,
        now: clock.now(),
      });
    }
  }
}
