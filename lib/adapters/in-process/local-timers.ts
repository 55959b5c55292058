import type { Clock } from "../../ports/clock.ts";
import type { TaskQueue } from "../../ports/task-queue.ts";
import type { TimerRequest, Timers } from "../../ports/timers.ts";

/** setTimeout cannot wait longer than this; longer timers are re-armed in steps. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * Timers in this process. With `mode: "real"` they fire on the clock (unref'd: they do not keep the process
 * alive; the log keeps them, and a restart re-arms them). With `mode: "manual"` nothing fires until
 * `fireDue(now)` is called: the time-skipping test runner drives them.
 */
export class LocalTimers implements Timers {
  private readonly pending = new Map<string, { request: TimerRequest; handle?: NodeJS.Timeout }>();

  constructor(
    private readonly queue: TaskQueue,
    private readonly clock: Clock,
    private readonly mode: "real" | "manual" = "real",
  ) {}

  async schedule(request: TimerRequest): Promise<void> {
    const key = `${request.runId}\u0000${request.timerId}`;
    const existing = this.pending.get(key);
    if (existing?.handle) clearTimeout(existing.handle);
    const entry: { request: TimerRequest; handle?: NodeJS.Timeout } = { request };
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

  /** The pending timer that fires first, if any. */
  next(): TimerRequest | undefined {
    let earliest: TimerRequest | undefined;
    for (const { request } of this.pending.values()) {
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
      await this.queue.enqueueActivation(entry.request.task);
    }
    return due.length;
  }

  clear(): void {
    for (const entry of this.pending.values()) if (entry.handle) clearTimeout(entry.handle);
    this.pending.clear();
  }

  private arm(key: string, entry: { request: TimerRequest; handle?: NodeJS.Timeout }): void {
    const delay = Math.max(0, entry.request.fireAt - this.clock.now());
    entry.handle = setTimeout(
      () => {
        if (this.pending.get(key) !== entry) return;
        if (entry.request.fireAt > this.clock.now()) return this.arm(key, entry);
        this.pending.delete(key);
        void this.queue.enqueueActivation(entry.request.task);
      },
      Math.min(delay, MAX_TIMEOUT_MS),
    );
    entry.handle.unref();
  }
}
