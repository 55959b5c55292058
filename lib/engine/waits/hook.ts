import type { HookWait, Wait } from "../execution.ts";
import { type ArmedTimer, iso, timerSend, type WaitBehaviour } from "./wait-kind.ts";

/** The timer of a wait's timeout: `hook:<hookId>`. */
const timeoutTimer = (wait: HookWait): ArmedTimer | undefined =>
  wait.timeoutAt === undefined ? undefined : { timerId: `hook:${wait.hookId}`, fireAt: wait.timeoutAt };

/**
 * A `waitForEvent` or webhook: events reach it through the run's inbox (see `deliverSignals` in decide.ts);
 * with a timeout, it also has a timer.
 */
export const hookWait: WaitBehaviour<HookWait> = {
  timer: timeoutTimer,
  label: (wait) => {
    const until = wait.timeoutAt === undefined ? "" : ` until ${iso(wait.timeoutAt)}`;
    return `event "${wait.eventName}" (${wait.hookId})${until}`;
  },
  sends: (wait) => timerSend(timeoutTimer(wait)),
};

/**
 * The timer of a wait answered at `now` that is still worth cancelling: one due more than 15 minutes on is a
 * durable schedule on AWS (past SQS's longest delay), which would fire for nothing at the old deadline and,
 * until then, count against the account's schedule quota. A sooner one is left to fire, ignored.
 */
export const answeredTimer = (wait: HookWait, now: number): string | undefined =>
  (wait.timeoutAt ?? 0) - now > 900_000 ? timeoutTimer(wait)?.timerId : undefined;

/** The waits for events whose timeout is due at `now`, the earliest first. */
export const dueHooks = (waits: readonly Wait[], now: number): HookWait[] =>
  waits
    .filter((wait): wait is HookWait => wait.kind === "hook" && (wait.timeoutAt ?? Infinity) <= now)
    .sort((a, b) => (a.timeoutAt ?? 0) - (b.timeoutAt ?? 0));
