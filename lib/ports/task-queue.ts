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
  /**
   * Optional, for queues that limit how many steps run at once: takes a slot for a step that an
   * activation runs inline (see `EngineOptions.inlineSteps`) and returns its release, or undefined when
   * no slot is free (the step is then queued). Without it, inline steps are not limited by the queue.
   */
  reserveStepSlot?(): (() => void) | undefined;
}
