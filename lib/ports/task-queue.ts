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
  /**
   * Whether this activation may have run before and died after its commit (a queue's redelivery, a retry
   * after an error), so that what its commit asked for may never have been sent. The queue knows: `false`
   * for a first delivery (SQS `ApproximateReceiveCount` 1, a BullMQ job neither retried nor stalled, the
   * in-process queue), `true` for a delivery again. A delivery again re-sends everything its run waits for,
   * whether or not its cause is in the log: the delivery that died may have committed something else (an
   * older event, which a wait takes first, and the step it started). A first delivery re-sends nothing, even
   * when another activation applied its cause (that one sent what it committed: issue, a step executed twice
   * with no fault). Left unset by a queue that cannot tell, an activation re-sends when its cause is in the log.
   */
  redelivered?: boolean;
  /**
   * The run's version is at least this when the activation is sent (a timer's: the version that armed it;
   * a step outcome's: the step's `issueSeq`): an engine that holds an older copy of the run reads it again
   * at once instead of deciding on the old copy (a doomed commit).
   */
  minVersion?: number;
  /**
   * When the activation was sent (epoch ms), set while telemetry is on: the wait until it starts is its
   * schedule-to-start. Absent for a timer's activation (its lateness is measured instead).
   */
  sentAt?: number;
}

/** "Run step S of run R, attempt n". */
export interface StepTask {
  runId: string;
  workflowName: string;
  stepId: string;
  stepName: string;
  attempt: number;
  input: unknown[];
  /**
   * The seq of the `step_started` event of this attempt: its outcome is stored under it (absent in tasks
   * sent by versions before it).
   */
  issueSeq?: number;
  /**
   * Set when the run waits on this attempt alone: its executor may go on with the run itself (see
   * `Engine.executeStep`'s `continueRun`) instead of waking it through the queue, as no other outcome is
   * about to be applied with it.
   */
  lone?: true;
  /**
   * Set when an activation sends the task again with everything its run waits for (a redelivery, a recovery):
   * the attempt may have run inline meanwhile, which stores no outcome (it goes into the run's log), so its
   * executor first checks the log (see `Engine.executeStep`).
   */
  resent?: true;
  /** W3C trace context of the activation that sent the task (set when OpenTelemetry is in use). */
  traceparent?: string;
  /** When the task was sent (epoch ms), for the schedule-to-start metric (set when OpenTelemetry is in use). */
  sentAt?: number;
}

/**
 * The hold a queue keeps on a run while one of its activations runs (Redis mode's run lock). The engine
 * lets go of it around a step it runs inline, so that other workers can activate the run meanwhile (a
 * cancellation is not held up by a long step), and takes it back before going on.
 */
export interface RunLease {
  /**
   * An inline step starts: the queue may let others activate the run until `resume`. A queue that does must
   * keep the copies of `step`'s task that they may send (`StepTask.resent`) from running while it runs here.
   */
  pause(step: StepTask): void;
  /** The step ended: false when the run could not be taken back (then its outcome goes the queued way). */
  resume(): Promise<boolean>;
}

/**
 * What a queue can carry, declared by the queue and enforced by the engine before it sends a task (see
 * lib/engine/payload-rules.ts): a step task over the limit fails its attempt with `PayloadTooLargeError`.
 */
export interface QueueLimits {
  /**
   * The largest step task, as JSON (`JSON.stringify(task)`) in UTF-8 bytes. The SQS queue declares its
   * message limit less its envelope, or `Infinity` when step inputs go to S3; the other queues carry any
   * task.
   */
  maxTaskBytes: number;
}

/** Delivers tasks at least once. */
export interface TaskQueue {
  /** What this queue can carry; a queue that leaves it out carries any task. */
  readonly limits?: QueueLimits;
  enqueueActivation(task: ActivationTask): Promise<void>;
  enqueueStep(task: StepTask): Promise<void>;
  /**
   * Optional, for queues that limit how many steps run at once: takes a slot for a step that an
   * activation runs inline (see `EngineOptions.inlineSteps`) and returns its release, or undefined when
   * no slot is free or the same attempt is already out (the step is then queued). Without it, inline
   * steps are not limited by the queue.
   */
  reserveStepSlot?(task: StepTask): (() => void) | undefined;
}
