/**
 * A deterministic hostile environment for the engine: the recording queue, timers and manual clock of
 * tests/core/support/manual-engine.ts, with a driver that loses, duplicates and reorders deliveries,
 * restarts the process (queue, timers and live runs lost, then `recover()`), and hands tasks to two
 * workers whose live runs go stale. Every decision comes from one seed, so a failure replays exactly.
 */

import type { AnyWorkflow, RunRecord, WorkflowEvent } from "tsworkflow";
import { VersionConflictError } from "tsworkflow";
import type { ActivationTask, StepTask, TimerRequest } from "tsworkflow/engine";
import {
  Engine,
  type EventStore,
  FINISHED_STATUSES,
  type RateLimitStore,
  RunLimits,
  type SlotStore,
  StepLimits,
} from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { recoverRuns } from "../../../lib/engine/run-control.ts";
import { ManualClock, RecordingQueue, RecordingTimers } from "../../core/support/manual-engine.ts";

export interface Faults {
  /** Chance that a delivery is lost (its worker died with it); the process restarts once the queue runs dry. */
  drop: number;
  /** Chance that a delivered task is delivered once more, later. */
  duplicate: number;
  /** Deliver the pending tasks (activations, steps, fired timers) in random order instead of as sent. */
  reorder: boolean;
  /** Chance, after each delivery, that the process dies: queued tasks, timers and live runs are lost, and a new process recovers. */
  restart: number;
  /** Chance, after each delivery, that the worker forgets its live runs (its next activation replays the log). */
  forget: number;
  /** Workers sharing the store and the queue; each task goes to one of them at random, so warm runs go stale. */
  workers: number;
  /** Chance that a commit or a stored outcome fails: half the time before it is written, half after (the reply is lost). */
  storeFaults?: number;
  /** Chance, at each turn, that a pending timer fires before its time (clock skew): the engine must arm it again. */
  earlyTimers?: number;
  /** Chance, at each turn, that time runs on to the next timer while tasks are still pending. */
  clockJumps?: number;
  /** Deliveries handed out at once (each batch 1 to `parallel`, run concurrently). @default 1 */
  parallel?: number;
  /** The engines' live-run cache (0: every activation replays the log). @default 10000 */
  cacheSize?: number;
}

export const NO_FAULTS: Faults = { drop: 0, duplicate: 0, reorder: false, restart: 0, forget: 0, workers: 1 };

export interface ChaosReport {
  run: RunRecord;
  events: WorkflowEvent[];
  deliveries: number;
  dropped: number;
  duplicated: number;
  restarts: number;
  /** Commits refused because another worker had moved the log on. */
  conflicts: number;
  /** Commits and outcomes that failed before or after being written. */
  storeFailures: number;
  /** Timers that fired before their time. */
  earlyTimers: number;
}

/** A store failure injected by the chaos driver. */
class StoreFault extends Error {
  override name = "StoreFault";
}

/** The store with injected failures around its writes, counting version conflicts. */
function flaky(
  store: EventStore,
  chance: (p: number) => boolean,
  p: number,
  report: ChaosReport,
): EventStore {
  const around = async <T>(what: string, write: () => Promise<T>): Promise<T> => {
    if (!chance(p)) return write();
    report.storeFailures += 1;
    if (chance(0.5)) throw new StoreFault(`${what} failed before it was written`);
    await write();
    throw new StoreFault(`${what} was written, but its reply was lost`);
  };
  return {
    createRun: (newRun) => store.createRun(newRun),
    getRun: (runId) => store.getRun(runId),
    listRuns: (query) => store.listRuns(query),
    getEvents: (runId) => store.getEvents(runId),
    getOutcome: (runId, stepId, attempt, issueSeq) => store.getOutcome(runId, stepId, attempt, issueSeq),
    listOutcomes: (runId, fromSeq, settled) => store.listOutcomes(runId, fromSeq, settled),
    putOutcome: (outcome) => around("an outcome", () => store.putOutcome(outcome)),
    commit: (runId, expectedVersion, events, patch) =>
      around("a commit", async () => {
        try {
          return await store.commit(runId, expectedVersion, events, patch);
        } catch (error) {
          if (error instanceof VersionConflictError) report.conflicts += 1;
          throw error;
        }
      }),
    close: () => store.close(),
  };
}

const MAX_DELIVERIES = 20_000;
/** How often a step waiting for a slot on one worker checks again (real time; see `StepLimits`'s `recheckMs`). */
const STEP_RECHECK_MS = 10;

/**
 * Sends `{ name }` to every `waitForEvent(name)` that an unfinished run waits on, as the outside world
 * would once the run is waiting. The signal id makes a repeated send harmless. Returns how many it sent.
 */
export async function answerWaits(store: EventStore, engine: Engine): Promise<number> {
  let sent = 0;
  for (const status of ["pending", "running", "suspended"] as const) {
    for (const run of (await store.listRuns({ status, limit: 1_000 })).runs) {
      for (const [hookId, name] of openWaits(await store.getEvents(run.runId))) {
        await engine.sendEvent(run.runId, name, { name }, { signalId: `${run.runId}.${hookId}` });
        sent += 1;
      }
    }
  }
  return sent;
}

/** The `waitForEvent`s a run's log shows waiting: hook id → event name. */
export function openWaits(events: readonly WorkflowEvent[]): Map<string, string> {
  const open = new Map<string, string>();
  for (const event of events) {
    if (event.type === "hook_created") open.set(event.hookId, event.eventName);
    if (event.type === "hook_received" || event.type === "hook_timed_out") open.delete(event.hookId);
  }
  return open;
}

/** mulberry32: small, seedable, good enough to pick faults. */
function prng(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Delivery = { kind: "activation"; task: ActivationTask } | { kind: "step"; task: StepTask };

/**
 * Runs `workflow(...args)` to its end under `faults`, decided by `seed`.
 * @throws when the run is left unfinished with nothing left to deliver (a lost run), or never ends
 */
export async function runWithFaults(
  workflow: AnyWorkflow,
  args: unknown[],
  faults: Faults,
  seed: number,
  /** Step and run concurrency slots (and run start rates) shared by every worker and process, as Redis would hold them. */
  shared: { slots?: SlotStore; rates?: RateLimitStore } = {},
): Promise<ChaosReport> {
  const random = prng(seed);
  const chance = (p: number) => p > 0 && random() < p;
  const memory = new MemoryStorage();
  const report: ChaosReport = {
    run: undefined as never,
    events: [],
    deliveries: 0,
    dropped: 0,
    duplicated: 0,
    restarts: 0,
    conflicts: 0,
    storeFailures: 0,
    earlyTimers: 0,
  };
  const store = flaky(memory, chance, faults.storeFaults ?? 0, report);
  const clock = new ManualClock();
  let queue = new RecordingQueue();
  let timers = new RecordingTimers();
  let engines: Engine[] = [];
  const boot = () => {
    queue = new RecordingQueue();
    timers = new RecordingTimers();
    engines = Array.from(
      { length: faults.workers },
      () =>
        new Engine({
          store,
          queue,
          timers,
          clock,
          ...(faults.cacheSize === undefined ? {} : { cacheSize: faults.cacheSize }),
          ...(shared.slots
            ? { stepLimits: new StepLimits({ slots: shared.slots, recheckMs: STEP_RECHECK_MS }) }
            : {}),
          ...(shared.slots
            ? {
                runLimits: new RunLimits({
                  slots: shared.slots,
                  ...(shared.rates ? { rates: shared.rates } : {}),
                }),
              }
            : {}),
        }),
    );
  };
  const restart = async () => {
    report.restarts += 1;
    boot();
    await recoverRuns(engines[0] as Engine);
  };

  boot();
  const { runId } = await (engines[0] as Engine).start(workflow, args);
  let lost = false;
  let failures = 0;
  let idleRechecks = 0;
  for (;;) {
    if (report.deliveries > MAX_DELIVERIES)
      throw new Error(`run ${runId} is still going after ${MAX_DELIVERIES} deliveries`);
    const pending = queue.activations.length + queue.steps.length;
    if (pending === 0) {
      // A process that lost work dies sooner or later; the next one finds the unfinished runs.
      if (lost) {
        lost = false;
        await restart();
        continue;
      }
      // Nothing moves: whoever the runs wait for answers now (a failed send is tried again).
      const answered = await answerWaits(store, engines[0] as Engine).catch(() => 1);
      if (answered > 0) {
        if (chance(faults.duplicate)) await answerWaits(store, engines[0] as Engine).catch(() => 0);
        continue;
      }
      const timer = timers.takeEarliest();
      if (timer) {
        clock.advanceTo(timer.fireAt);
        queue.activations.push(timer.task);
        continue;
      }
      // A step parked on one worker for a slot that another worker released comes back at its re-check, a
      // real-time timer of that worker's StepLimits: give the re-checks their time before calling the run lost.
      if (shared.slots && idleRechecks < 3) {
        idleRechecks += 1;
        await new Promise((resolve) => setTimeout(resolve, STEP_RECHECK_MS * 4));
        continue;
      }
      break;
    }
    idleRechecks = 0;
    if (chance(faults.earlyTimers ?? 0) && timers.pending.size > 0) {
      const keys = [...timers.pending.keys()];
      const key = keys[Math.floor(random() * keys.length)] as string;
      const timer = timers.pending.get(key) as TimerRequest;
      timers.pending.delete(key);
      report.earlyTimers += 1;
      queue.activations.push(timer.task);
    }
    if (chance(faults.clockJumps ?? 0)) {
      const timer = timers.takeEarliest();
      if (timer) {
        clock.advanceTo(timer.fireAt);
        queue.activations.push(timer.task);
      }
    }
    // Up to `parallel` deliveries at once: activations of one run on two workers race to commit.
    const batch: { delivery: Delivery; engine: Engine }[] = [];
    const size = 1 + Math.floor(random() * (faults.parallel ?? 1));
    while (batch.length < size && queue.activations.length + queue.steps.length > 0) {
      const available = queue.activations.length + queue.steps.length;
      const index = faults.reorder ? Math.floor(random() * available) : 0;
      const delivery: Delivery =
        index < queue.activations.length
          ? { kind: "activation", task: queue.activations.splice(index, 1)[0] as ActivationTask }
          : { kind: "step", task: queue.steps.splice(index - queue.activations.length, 1)[0] as StepTask };
      if (chance(faults.drop)) {
        report.dropped += 1;
        lost = true;
        continue;
      }
      batch.push({ delivery, engine: engines[Math.floor(random() * engines.length)] as Engine });
    }
    report.deliveries += batch.length;
    const settled = await Promise.allSettled(
      batch.map(({ delivery, engine }) =>
        delivery.kind === "activation" ? engine.activate(delivery.task) : engine.executeStep(delivery.task),
      ),
    );
    for (const [index, result] of settled.entries()) {
      const { delivery, engine } = batch[index] as (typeof batch)[number];
      const again = () => {
        if (delivery.kind === "activation") queue.activations.push(structuredClone(delivery.task));
        else queue.steps.push(structuredClone(delivery.task));
      };
      if (result.status === "rejected") {
        // A failed delivery comes back, as from a real queue; an endless series of failures is a bug.
        failures += 1;
        if (failures > 1_000) throw result.reason;
        again();
        continue;
      }
      if (chance(faults.duplicate)) {
        report.duplicated += 1;
        again();
      }
      if (chance(faults.forget)) engine.clearCache();
    }
    if (chance(faults.restart)) await restart();
  }
  const run = await memory.getRun(runId);
  if (!run || !FINISHED_STATUSES.has(run.status)) {
    throw new Error(`run ${runId} was lost: nothing left to deliver, but it is ${run?.status ?? "missing"}`);
  }
  return { ...report, run, events: await memory.getEvents(runId) };
}
