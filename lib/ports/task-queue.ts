/** Why a run is activated; an activation whose cause is already in the log is a redelivery. */
export type ActivationCause =
  | { kind: "start" }
  | { kind: "outcome"; stepId: string; attempt: number }
  | { kind: "timer"; timerId: string }
  | { kind: "recover" }
  | { kind: "wake" };

/** "Activate run R": load its log and the outcomes that arrived since, advance it, commit. */
export interface ActivationTask {
  runId: string;
  cause: ActivationCause;
}

/** "Run step S of run R, attempt n". */
export interface StepTask {
  runId: string;
  workflowName: string;
  stepId: string;
  stepName: string;
  attempt: number;
  input: unknown[];
}

/** Delivers tasks at least once. */
export interface TaskQueue {
  enqueueActivation(task: ActivationTask): Promise<void>;
  enqueueStep(task: StepTask): Promise<void>;
}
