import { getLogger } from "../../core/logger.ts";
import { optional } from "../../core/optional.ts";
import type { ActivationCause, ActivationTask, StepTask, TaskQueue } from "../../ports/task-queue.ts";

/** What consumes the tasks: the engine's activation and step executor. */
export interface TaskHandlers {
  activate(task: ActivationTask): Promise<void>;
  executeStep(task: StepTask): Promise<void>;
  /** Called when an activation throws; the queue retries it after `retryDelayMs` (doubled each time it throws again). */
  onActivationError?(task: ActivationTask, error: unknown): "retry" | "drop";
}

/** Options of {@link InProcessQueue}. */
export interface InProcessQueueOptions {
  /** Steps run at once. @default 100 */
  concurrency?: number;
  /**
   * Wait before an activation that threw runs again; each further failure in a row of the same run's
   * activation doubles it, up to `maxRetryDelayMs` (a full disk is not retried every second).
   * @default 1000
   */
  retryDelayMs?: number;
  /** The longest wait before an activation that keeps throwing runs again. @default 30000 */
  maxRetryDelayMs?: number;
}

/**
 * Delivers tasks inside this process. Activations of a run are coalesced: one activation handles every
 * outcome that arrived before it ran. Steps run in parallel up to `concurrency`. Nothing here is
 * durable: after a restart the runtime rebuilds the work from the log (`Engine.recover`).
 */
export class InProcessQueue implements TaskQueue {
  private handlers: TaskHandlers | undefined;
  private readonly concurrency: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  /** Activations that threw in a row, by run (none once one succeeds). */
  private readonly failures = new Map<string, number>();
  private readonly waitingActivations = new Map<
    string,
    { cause: ActivationCause; redelivered: boolean; sentAt?: number }
  >();
  private readonly stepBacklog: StepTask[] = [];
  /** Step attempts queued or running here (inline ones too): a copy sent meanwhile is not run twice. */
  private readonly stepsOut = new Set<string>();
  private runningSteps = 0;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  /** Runs whose next activation runs even once the queue is closing (see `finishOnClose`). */
  private readonly finishing = new Set<string>();

  constructor(options: InProcessQueueOptions = {}) {
    this.concurrency = options.concurrency ?? 100;
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
  }

  /** Starts delivering to `handlers`. */
  consume(handlers: TaskHandlers): void {
    this.handlers = handlers;
  }

  async enqueueActivation(task: ActivationTask): Promise<void> {
    if (this.closed) return;
    // Only a task that stands for an earlier delivery (a retry after an error) is a redelivery here.
    const redelivered = task.redelivered === true;
    const waiting = this.waitingActivations.get(task.runId);
    if (waiting) {
      // Merged activations wait since the first was sent.
      const sentAt = waiting.sentAt ?? task.sentAt;
      this.waitingActivations.set(task.runId, {
        cause: mergeCauses(waiting.cause, task.cause),
        redelivered: waiting.redelivered || redelivered,
        ...optional("sentAt", sentAt),
      });
      return;
    }
    this.waitingActivations.set(task.runId, {
      cause: task.cause,
      redelivered,
      ...optional("sentAt", task.sentAt),
    });
    this.track(() => this.runActivation(task.runId));
  }

  async enqueueStep(task: StepTask): Promise<void> {
    if (this.closed) return;
    const key = stepKey(task);
    if (this.stepsOut.has(key)) return;
    this.stepsOut.add(key);
    this.stepBacklog.push(task);
    this.pumpSteps();
  }

  /**
   * A step slot for a step an activation runs itself: free when fewer than `concurrency` steps run and
   * none waits (queued steps go first). The release is safe to call more than once.
   */
  reserveStepSlot(task: StepTask): (() => void) | undefined {
    if (this.closed || this.runningSteps >= this.concurrency || this.stepBacklog.length > 0) return undefined;
    const key = stepKey(task);
    if (this.stepsOut.has(key)) return undefined;
    this.stepsOut.add(key);
    this.runningSteps += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.stepsOut.delete(key);
      this.runningSteps -= 1;
      this.pumpSteps();
    };
  }

  /** Resolves when no task is queued or running. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get busy(): boolean {
    return this.inFlight > 0;
  }

  /**
   * The run's next activation carries a request of this process's caller (a cancellation, an event) and
   * runs even when `close()` comes first, so that the request is recorded before the queue closes. The
   * steps it sends are not run then: the next start of the runtime runs them.
   */
  finishOnClose(runId: string): void {
    this.finishing.add(runId);
  }

  /** Stops taking tasks and waits for the running ones (and the activations `finishOnClose` marked). */
  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.stepBacklog.splice(0)) this.stepsOut.delete(stepKey(task));
    await this.idle();
  }

  private async runActivation(runId: string): Promise<void> {
    // Let outcomes that arrive in the same turn join this activation.
    await new Promise((resolve) => setImmediate(resolve));
    const waiting = this.waitingActivations.get(runId);
    this.waitingActivations.delete(runId);
    const finishing = this.finishing.delete(runId);
    if (!waiting || !this.handlers || (this.closed && !finishing)) return;
    const task: ActivationTask = {
      runId,
      cause: waiting.cause,
      redelivered: waiting.redelivered,
      ...optional("sentAt", waiting.sentAt),
    };
    try {
      await this.handlers.activate(task);
      if (this.failures.size > 0) this.failures.delete(runId);
    } catch (error) {
      const decision = this.handlers.onActivationError?.(task, error) ?? "retry";
      if (decision !== "retry" || this.closed) {
        this.failures.delete(runId);
        return;
      }
      const failures = (this.failures.get(runId) ?? 0) + 1;
      this.failures.set(runId, failures);
      const delay = Math.min(this.retryDelayMs * 2 ** (failures - 1), this.maxRetryDelayMs);
      this.track(
        () =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              void this.enqueueActivation({ ...task, redelivered: true }).then(resolve);
            }, delay),
          ),
      );
    }
  }

  private pumpSteps(): void {
    while (this.runningSteps < this.concurrency && this.stepBacklog.length > 0) {
      const task = this.stepBacklog.shift() as StepTask;
      this.runningSteps += 1;
      this.track(async () => {
        try {
          await this.handlers?.executeStep(task);
        } catch (error) {
          getLogger().error(`step task failed to record its outcome: ${String(error)}`, {
            runId: task.runId,
            stepId: task.stepId,
          });
        } finally {
          this.stepsOut.delete(stepKey(task));
          this.runningSteps -= 1;
          this.pumpSteps();
        }
      });
    }
  }

  private track(work: () => Promise<void>): void {
    this.inFlight += 1;
    void work().finally(() => {
      this.inFlight -= 1;
      if (this.inFlight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    });
  }
}

const stepKey = (task: StepTask) => `${task.runId}\u0000${task.stepId}\u0000${task.attempt}`;

/** Two waiting activations of one run become one: a recovery or a redelivery check must not be lost. */
function mergeCauses(a: ActivationCause, b: ActivationCause): ActivationCause {
  if (a.kind === "recover" || b.kind === "recover") return { kind: "recover" };
  if (a.kind === "start") return a;
  if (b.kind === "start") return b;
  return { kind: "wake" };
}
