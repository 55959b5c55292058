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

/**
 * The hold a queue keeps on a run while one of its activations runs (Redis mode's run lock). The engine
 * lets go of it around a step it runs inline, so that other workers can activate the run meanwhile (a
 * cancellation is not held up by a long step), and takes it back before going on.
 */
export interface RunLease {
  /** An inline step starts: the queue may let others activate the run until `resume`. */
  pause(): void;
  /** The step ended: false when the run could not be taken back (then its outcome goes the queued way). */
  resume(): Promise<boolean>;
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
