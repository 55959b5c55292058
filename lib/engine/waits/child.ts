import type { ChildWait, RunExecution } from "../execution.ts";
import type { WaitBehaviour } from "./wait-kind.ts";

/** A child run: started (once per child id) by its parent's activation; its result comes through the inbox. */
export const childWait: WaitBehaviour<ChildWait> = {
  timer: () => undefined,
  label: (wait) => `child run ${wait.childRunId} (${wait.workflowName})`,
  sends: (wait) => [{ type: "child", wait }],
};

/** True when the log has applied this child's result already. */
export function childResultApplied(execution: RunExecution, childId: string): boolean {
  return execution.waitOf("child", childId) === undefined;
}
