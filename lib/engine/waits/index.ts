import type { Wait, WaitKind } from "../execution.ts";
import { childWait } from "./child.ts";
import { hookWait } from "./hook.ts";
import { sleepWait } from "./sleep.ts";
import { stepWait } from "./step.ts";
import type { ArmedTimer, Send, WaitBehaviour } from "./wait-kind.ts";

export { childResultApplied } from "./child.ts";
export { answeredTimer, dueHooks } from "./hook.ts";
export { oldestAttemptOut, retryTimerId, stepOutcomeApplied } from "./step.ts";
export type { ArmedTimer, Send } from "./wait-kind.ts";
export { iso } from "./wait-kind.ts";

const behaviours: { [K in WaitKind]: WaitBehaviour<Extract<Wait, { kind: K }>> } = {
  step: stepWait,
  sleep: sleepWait,
  hook: hookWait,
  child: childWait,
};

const behaviourOf = (wait: Wait) => behaviours[wait.kind] as WaitBehaviour<Wait>;

/** The timer a wait has armed, if any. */
export const timerOf = (wait: Wait): ArmedTimer | undefined => behaviourOf(wait).timer(wait);

/** What a wait needs sent (see `WaitBehaviour.sends`). */
export const sendsOf = (wait: Wait): Send[] => behaviourOf(wait).sends(wait);

/** What a suspended run shows it waits for, if this wait shows. */
export const labelOf = (wait: Wait): string | undefined => behaviourOf(wait).label(wait);
