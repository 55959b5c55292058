import { requireExecution } from "./context.ts";
import { assertName } from "./names.ts";
import type { AnyWorkflow, WorkflowArgs } from "./workflow.ts";

function assertPatchId(patchId: string, caller: string): void {
  assertName("patch id", patchId, ` in ${caller}`);
}

/**
 * Changes workflow code under live runs: `true` where the run takes the new code, `false` where it must
 * replay the old. A run that had already gone past this point when the change was deployed (its log has
 * calls after it) gets `false` and replays the old branch; a new run, or one that had not reached this
 * point yet, gets `true`, and the log records that (`patch_applied`) so that its replays take the new
 * branch too. Once no run on the old branch is left, replace the `if` with the new code and
 * {@link deprecatePatch}.
 * @example
 * import { patched, step, workflow } from "tsworkflow";
 * const sendEmail = step("send_email", async (to: string) => `email to ${to}`);
 * const sendSms = step("send_sms", async (to: string) => `sms to ${to}`);
 * export const notify = workflow("notify", async (user: string) => {
 *   if (patched("send-sms-instead")) return await sendSms(user);
 *   return await sendEmail(user);
 * });
 * @throws ConfigurationError for an invalid patch id (1 to 100 letters, digits, "_", ".", ":" or "-")
 * @throws NotInWorkflowError outside a workflow
 */
export function patched(patchId: string): boolean {
  assertPatchId(patchId, "patched()");
  return requireExecution("patched()").callPatched(patchId);
}

/**
 * Marks the end of a patch's life: the code keeps only the new branch, and runs still record that they
 * took it (so that histories stay valid if the code rolls back to the `patched()` version). Call it where
 * `patched(patchId)` was, once no run that passed that point before the patch is left (check with
 * `tsworkflow replay`); remove it in a later deploy.
 * @example
 * import { deprecatePatch, step, workflow } from "tsworkflow";
 * const sendSms = step("send_sms", async (to: string) => `sms to ${to}`);
 * export const notify = workflow("notify", async (user: string) => {
 *   deprecatePatch("send-sms-instead");
 *   return await sendSms(user);
 * });
 * @throws ConfigurationError for an invalid patch id
 * @throws NotInWorkflowError outside a workflow
 */
export function deprecatePatch(patchId: string): void {
  assertPatchId(patchId, "deprecatePatch()");
  requireExecution("deprecatePatch()").callDeprecatePatch(patchId);
}

/**
 * Ends this run and starts a fresh run of the same workflow with `args` (its latest version): the log of an
 * endless loop (a monthly subscription, a poller) starts anew instead of growing to the event cap. The old
 * run ends `continued` with `workflow_continued_as_new`; the new one has `continuedFrom`, the old one
 * `continuedAs`, and both keep the tags. `getRun`/`waitForRun(runId, { followContinuations: true })` follow
 * the chain; cancelling any run of the chain cancels its live end. Nothing after the call runs (like a
 * `return`): `return continueAsNew(...)` reads best. Not even the steps of a `finally` around it: a step,
 * sleep, child run or wait called after it is not recorded and never settles (do the cleanup before).
 * @example
 * import { continueAsNew, sleep, step, workflow } from "tsworkflow";
 * const charge = step("charge", async (customer: string, month: number) => `${customer} paid month ${month}`);
 * export const subscription = workflow("subscription", async (customer: string, month: number) => {
 *   await charge(customer, month);
 *   await sleep("30d");
 *   return continueAsNew(customer, month + 1);
 * });
 * @throws NotInWorkflowError outside a workflow
 * @throws NonSerializableError / PayloadTooLargeError when the arguments cannot be stored
 * @throws WorkflowInputError when the workflow's `input` schema refuses the arguments (the run fails unless
 *   the workflow catches it; nothing continues it)
 */
export function continueAsNew<W extends AnyWorkflow = AnyWorkflow>(...args: WorkflowArgs<W>): Promise<never> {
  requireExecution("continueAsNew()").callContinueAsNew(args);
  // Never settles: the run ends with this activation, and no code after the call may run.
  return new Promise<never>(() => {});
}
