import type { SleepWait } from "../execution.ts";
import { type ArmedTimer, iso, timerSend, type WaitBehaviour } from "./wait-kind.ts";

/** A sleep's timer has the sleep's id. */
const sleepTimer = (wait: SleepWait): ArmedTimer => ({ timerId: wait.sleepId, fireAt: wait.resumeAt });

/** A `sleep()`: one timer, due at its resume time. */
export const sleepWait: WaitBehaviour<SleepWait> = {
  timer: sleepTimer,
  label: (wait) => `${wait.sleepId} until ${iso(wait.resumeAt)}`,
  sends: (wait) => timerSend(sleepTimer(wait)),
};
