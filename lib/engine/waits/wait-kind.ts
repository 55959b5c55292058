import type { ChildWait, StepWait, Wait } from "../execution.ts";

/** A timer a wait has armed: it wakes the run at `fireAt`. */
export interface ArmedTimer {
  timerId: string;
  fireAt: number;
}

/** What an activation sends after its commit for what the run waits on. */
export type Send =
  | { type: "step"; wait: StepWait }
  | ({ type: "timer" } & ArmedTimer)
  | { type: "child"; wait: ChildWait };

/** What the engine needs to know of one kind of wait; each kind has its module (step, sleep, hook, child). */
export interface WaitBehaviour<W extends Wait> {
  /** The timer this wait has armed, if any. */
  timer(wait: W): ArmedTimer | undefined;
  /** What a suspended run shows it waits for (`runs list`, `workflow_suspended`), if the wait shows. */
  label(wait: W): string | undefined;
  /**
   * What the wait needs sent: when it begins, and again after a redelivery or a recovery (every send is
   * idempotent, so a duplicate is harmless).
   */
  sends(wait: W): Send[];
}

/** The send that arms a wait's timer, if it has one. */
export function timerSend(timer: ArmedTimer | undefined): Send[] {
  return timer ? [{ type: "timer", ...timer }] : [];
}

let lastTime: number | undefined;
let lastIso = "";

/**
 * A time as an ISO string (events' timestamps, labels). The last one is kept: an activation stamps all its
 * events with one time, and `toISOString` costs about a microsecond.
 */
export function iso(time: number): string {
  if (time !== lastTime) {
    lastIso = new Date(time).toISOString();
    lastTime = time;
  }
  return lastIso;
}
