import { AsyncLocalStorage } from "node:async_hooks";
import { NotInWorkflowError } from "./errors.ts";
import type { WorkflowScope } from "./workflow-scope.ts";

/** What a running step can know about itself, e.g. to pass an idempotency key downstream. */
export interface StepInfo {
  runId: string;
  workflowName: string;
  stepId: string;
  stepName: string;
  /**
   * Which attempt this is: 1 for the first, 2 for the first retry… (counted from 1, while the `#0` of a step
   * id counts calls of the step from 0: the first attempt of `charge_card#0` is attempt 1).
   */
  attempt: number;
  /** `<runId>:<stepId>`: the same for every attempt of this step, unique across runs. */
  idempotencyKey: string;
}

type Scope = { kind: "workflow"; execution: WorkflowScope } | { kind: "step"; info: StepInfo };

const scope = new AsyncLocalStorage<Scope>();

export function runInWorkflow<T>(execution: WorkflowScope, fn: () => T): T {
  return scope.run({ kind: "workflow", execution }, fn);
}

export function runInStep<T>(info: StepInfo, fn: () => T): T {
  return scope.run({ kind: "step", info }, fn);
}

/** The run when called from workflow code, else undefined. */
export function currentExecution(): WorkflowScope | undefined {
  const current = scope.getStore();
  return current?.kind === "workflow" ? current.execution : undefined;
}

export function requireExecution(what: string): WorkflowScope {
  const current = scope.getStore();
  if (current?.kind === "workflow") return current.execution;
  throw new NotInWorkflowError(what, current?.info.stepName);
}

/**
 * Inside a step: which run, step and attempt this is. Outside a step: undefined.
 * @example
 * import { step, getStepInfo } from "tsworkflow";
 * const charge = step("charge", async (amount: number) => {
 *   const info = getStepInfo();
 *   return payments.charge(amount, { idempotencyKey: info?.idempotencyKey });
 * });
 */
export function getStepInfo(): StepInfo | undefined {
  const current = scope.getStore();
  return current?.kind === "step" ? current.info : undefined;
}
