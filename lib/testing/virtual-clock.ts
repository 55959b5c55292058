import type { Clock } from "../ports/clock.ts";

/** A clock that stands still until told to move: sleeps of days pass in no time. */
export class VirtualClock implements Clock {
  constructor(private current = Date.now()) {}

  now(): number {
    return this.current;
  }

  /** Moves to `time` (never backwards). */
  advanceTo(time: number): void {
    this.current = Math.max(this.current, time);
  }
}
