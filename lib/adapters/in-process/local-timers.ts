import { MAX_TIMER_MS } from "../../core/options.ts";
import type { Clock } from "../../ports/clock.ts";
import type { ActivationTask, StepTask, TaskQueue } from "../../ports/task-queue.ts";
import type { TimerRequest, Timers } from "../../ports/timers.ts";

/** setTimeout cannot wait longer than this; longer timers are re-armed in steps. */

/** A timer of this process: a run's, or the rate-limit turn of a step task that waits (see `sendStepAt`). */
export type LocalTimer = Omit<TimerRequest, "task"> & { task: ActivationTask | StepTask };
type Entry = { request: LocalTimer; handle?: NodeJS.Timeout };

/**
 * Timers in this process. With `mode: "real"` they fire on the clock (unref'd: they do not keep the process
 * alive; the log keeps them, and a restart re-arms them). With `mode: "manual"` nothing fires until
 * `fireDue(now)` is called: the time-skipping test runner drives them.
 */
export class LocalTimers implements Timers {
  private readonly pending = new Map<string, Entry>();

  constructor(
    private readonly queue: TaskQueue,
    private readonly clock: Clock,
    private readonly mode: "real" | "manual" = "real",
  ) {}

  async schedule(request: TimerRequest): Promise<void> {
    this.add(request);
  }

  /**
   * Sends a step task again at `fireAt`, as a timer of its run: the rate-limit turn of a step whose start
   * must wait (the embedded runtime's `StepLimits` sends it here, so that it comes on this clock and mode).
   * Not kept across a restart: the run's recovery sends its steps again.
   */
  async sendStepAt(task: StepTask, fireAt: number): Promise<void> {
    this.add({ runId: task.runId, timerId: `rate-limit:${task.stepId}:${task.attempt}`, fireAt, task });
  }

  private add(request: LocalTimer): void {
    const key = `${request.runId}\u0000${request.timerId}`;
    const existing = this.pending.get(key);
    if (existing?.handle) clearTimeout(existing.handle);
    const entry: Entry = { request };
    this.pending.set(key, entry);
    if (this.mode === "real") this.arm(key, entry);
  }

  async cancel(runId: string, timerId: string): Promise<void> {
    const key = `${runId}\u0000${timerId}`;
    const existing = this.pending.get(key);
    if (existing?.handle) clearTimeout(existing.handle);
    this.pending.delete(key);
  }

  /** The earliest time a pending timer fires, if any. */
  nextFireAt(): number | undefined {
    return this.next()?.fireAt;
  }

  /** The pending timers, the first to fire first. */
  inOrder(): LocalTimer[] {
    return [...this.pending.values()].map(({ request }) => request).sort((a, b) => a.fireAt - b.fireAt);
  }

  /** The pending timer that fires first, if any (of run `runId` when given). */
  next(runId?: string): LocalTimer | undefined {
    let earliest: LocalTimer | undefined;
    for (const { request } of this.pending.values()) {
      if (runId !== undefined && request.runId !== runId) continue;
      if (earliest === undefined || request.fireAt < earliest.fireAt) earliest = request;
    }
    return earliest;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Fires every timer due at `now`; returns how many fired. */
  async fireDue(now: number): Promise<number> {
    const due = [...this.pending.entries()].filter(([, entry]) => entry.request.fireAt <= now);
    due.sort(([, a], [, b]) => a.request.fireAt - b.request.fireAt);
    for (const [key, entry] of due) {
      if (entry.handle) clearTimeout(entry.handle);
      this.pending.delete(key);
      await this.send(entry.request.task);
    }
    return due.length;
  }

  clear(): void {
    for (const entry of this.pending.values()) if (entry.handle) clearTimeout(entry.handle);
    this.pending.clear();
  }

  private send(task: LocalTimer["task"]): Promise<void> {
    return "stepId" in task ? this.queue.enqueueStep(task) : this.queue.enqueueActivation(task);
  }

  private arm(key: string, entry: Entry): void {
    const delay = Math.max(0, entry.request.fireAt - this.clock.now());
    entry.handle = setTimeout(
      () => {
        if (this.pending.get(key) !== entry) return;
        if (entry.request.fireAt > this.clock.now()) return this.arm(key, entry);
        this.pending.delete(key);
        void this.send(entry.request.task);
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    entry.handle.unref();
  }
}
