import { hostname } from "node:os";
import type { Job, JobsOptions, Queue } from "bullmq";
import type { Redis } from "ioredis";
import {
  ConfigurationError,
  missingCodeOf,
  StepNotFoundError,
  WorkflowNotFoundError,
} from "../../core/errors.ts";
import { getLogger } from "../../core/logger.ts";
import { isFromOutside } from "../../ports/inbox.ts";
import type { ActivationTask, RunLease, StepTask, TaskQueue } from "../../ports/task-queue.ts";
import { AwaitingCode } from "./awaiting-code.ts";
import {
  closeRedis,
  isConnectionFailure,
  mapRedisError,
  openRedis,
  type RedisConnection,
} from "./connection.ts";
import { OutageLog } from "./outage-log.ts";
import { bullmq } from "./redis-packages.ts";
import { type HeldLock, RunLocks, type StepAttempt } from "./run-lock.ts";

/** BullMQ queue names (under the BullMQ prefix `<prefix>bull`). */
export const ACTIVATIONS_QUEUE = "activations";
export const STEPS_QUEUE = "steps";

/** Options of {@link BullMQQueue}. */
export interface BullMQQueueOptions {
  /** A connected ioredis client (you close it) or a `redis://` URL. */
  redis: Redis | string;
  /**
   * Prepended to tsworkflow's keys (locks); BullMQ's keys live under `<prefix>bull`. Use the same prefix
   * as the {@link RedisStorage} of the same application.
   * @default "tsw:"
   */
  prefix?: string;
}

/** What a consumer does with each task: the engine's `activate` and `executeStep`. */
export interface QueueHandlers {
  /** `lease` is the run's lock, which the engine lets go of around a long inline step. */
  activate(task: ActivationTask, lease?: RunLease): Promise<void>;
  /**
   * A `StepNotFoundError` it throws (a step this worker does not register: `createRedisRuntime`'s workers throw it
   * before the engine would record the attempt as failed) puts the job back for a worker that has the step.
   */
  executeStep(task: StepTask): Promise<void>;
}

/** Options of {@link BullMQQueue.consume}. */
export interface ConsumeOptions {
  /**
   * How many activations, and separately how many steps, this process handles at once.
   * @default 10
   */
  concurrency?: number;
  /** Shown in logs and as the BullMQ worker name. @default "<hostname>-<pid>" */
  workerId?: string;
  /**
   * A job whose worker died (kill -9, lost network) is handed to another worker after about this long.
   * Also the BullMQ lock duration, so an activation or step that blocks the event loop longer than this
   * may run twice (steps run at least once anyway).
   * @default 30000
   */
  stalledAfterMs?: number;
  /**
   * How long the per-run activation lock lives without renewal (it is renewed every third of this).
   * @default 30000
   */
  runLockMs?: number;
  /**
   * Activate a run right after one of its steps, inside that step's job, instead of through a job on the
   * activation queue (when the run's lock is free; otherwise the activation is queued as usual). The step
   * job finishes only after the activation, so a worker that dies in between loses nothing: the step job
   * is delivered again, finds its outcome stored and wakes the run. Saves a job per step.
   * @default true
   */
  inlineActivations?: boolean;
}

/** A running consumer of both queues. */
export interface QueueConsumer {
  readonly workerId: string;
  /** Stops taking jobs and waits for the jobs in flight to finish. */
  close(): Promise<void>;
}

const RETRY = { attempts: 8, backoff: { type: "exponential", delay: 250 } } as const;
/** A lock held elsewhere: try again shortly (jittered so waiting activations do not collide again). */
const relockDelay = () => 20 + Math.floor(Math.random() * 60);

/** How long an inline activation waits for a run lock that is being released (ms), before queueing. */
const INLINE_LOCK_WAITS = [1, 3];

/**
 * An inline step still running after this long lets go of its run's lock, so that another activation of
 * the run (a cancellation, an event) is not held up by a long step; the lock is taken back after it.
 */
const LEASE_PAUSE_AFTER_MS = 100;

/**
 * Activates a run inside a step job: `done`; `busy` when it could not (queue the activation); `again` when
 * the queued activation must count as a redelivery (an inline activation failed, perhaps after its commit).
 */
type InlineActivator = (task: ActivationTask) => Promise<"done" | "busy" | "again">;

/** A step job in this process's hands (see `BullMQQueue.enqueueStep`). */
interface StepInHand {
  task: StepTask;
  /** How long to wait for BullMQ to complete the job before a send of its task goes anyway (its lock time). */
  lockMs: number;
  /**
   * Its own task was sent while it ran or while BullMQ completed it: it runs again after, at this time (epoch
   * ms: the earliest of the sends, now for a send without delay).
   */
  sendAt?: number;
  /** Its step has run; BullMQ is completing the job. */
  finishing?: true;
}

/** A job BullMQ hands out again: retried after a failure, or taken back from a worker that stalled (died). */
const isRedelivery = (job: Job) => job.attemptsMade > 0 || (job.stalledCounter ?? 0) > 0;

/** The wake-up a step job sends for its own outcome. */
const wakeKey = (runId: string, stepId: string, attempt: number) => `${runId}|${stepId}|${attempt}`;

/** BullMQ job ids cannot contain ":"; run ids cannot contain "|", so these ids never collide. */
export const stepJobId = (task: StepAttempt) =>
  `step|${task.runId}|${encodeURIComponent(task.stepId)}|${task.attempt}`;

/**
 * A {@link TaskQueue} on BullMQ: one queue of activations, one of steps, delivered at least once.
 *
 * - Pending activations of a run are coalesced (BullMQ deduplication on the run id with
 *   `keepLastIfActive`): at most one waits while one runs, and one that arrives while a run is being
 *   activated is kept for after, never dropped.
 * - Activations of one run never overlap across workers: each takes a per-run lock in Redis first, and
 *   a job that finds the lock held goes back to the delayed set for a few tens of milliseconds.
 * - A step task's job id is `(runId, stepId, attempt)`, so a re-sent step that is still queued or running
 *   is not queued twice.
 * - An activation of a run whose workflow, or whose version of it, this worker does not register, and a step job
 *   whose handler throws `StepNotFoundError`, go back to the delayed set for a worker that has that code (see
 *   {@link AwaitingCode}), never failed.
 * @example
 * import { BullMQQueue } from "tsworkflow/redis";
 * const queue = new BullMQQueue({ redis: "redis://127.0.0.1:6379" });
 */
export class BullMQQueue implements TaskQueue {
  readonly prefix: string;
  /** The BullMQ queue of activations (timers add delayed jobs to it). */
  readonly activations: Queue;
  readonly steps: Queue;
  private readonly connection: RedisConnection;
  private readonly consumers = new Set<QueueConsumer>();
  /** Step jobs running in this process, by the wake-up they will send: that wake-up runs inline. */
  private readonly inlineWakes = new Map<string, InlineActivator>();
  /**
   * Step jobs in this process's hands, by job id, from their start until BullMQ has completed them, and whether
   * their own task was sent meanwhile (see `enqueueStep`).
   */
  private readonly stepsInHand = new Map<string, StepInHand>();
  /**
   * Step jobs this process put back in the delayed set (a send with a delay), with the time they are due back:
   * a send without delay promotes them.
   */
  private readonly delayedHere = new Map<string, number>();

  constructor(options: BullMQQueueOptions) {
    this.prefix = options.prefix ?? "tsw:";
    this.connection = openRedis(options.redis);
    const queueOptions = { connection: this.connection.client, prefix: `${this.prefix}bull` };
    this.activations = new bullmq.Queue(ACTIVATIONS_QUEUE, queueOptions);
    this.steps = new bullmq.Queue(STEPS_QUEUE, queueOptions);
    // Queue errors also surface on the calls that failed; this keeps them from being unhandled.
    this.activations.on("error", () => {});
    this.steps.on("error", () => {});
  }

  /** The address of the Redis server, password hidden. */
  get url(): string {
    return this.connection.url;
  }

  async enqueueActivation(sent: ActivationTask): Promise<void> {
    let task = sent;
    if (task.cause.kind === "outcome") {
      const inline = this.inlineWakes.get(wakeKey(task.runId, task.cause.stepId, task.cause.attempt));
      const result = inline && (await inline(task));
      if (result === "done") return;
      if (result === "again") task = { ...task, redelivered: true };
    }
    // What comes from outside the run (a cancellation, an event, a child's result: see `readInboxId`)
    // is not coalesced: an activation busy with a long inline step would hold it back until the step ends.
    // It waits for the run's lock instead, which that activation lets go of while its step runs.
    const fromOutside = task.cause.kind === "outcome" && isFromOutside(task.cause.stepId);
    await this.add(this.activations, "activate", task, {
      ...(fromOutside ? {} : { deduplication: { id: task.runId, keepLastIfActive: true } }),
      removeOnComplete: true,
      removeOnFail: { count: 1000 },
      ...RETRY,
    });
  }

  /**
   * Sends a step task, after `delayMs` (BullMQ keeps one job per attempt: a re-send while the job waits or
   * runs elsewhere is dropped). A send of a task whose job this process is running (a step that waits for its
   * rate limit or a concurrency slot sends itself again when its turn may have come) is not dropped: the job
   * goes back to the delayed set when it ends (in Redis, so a worker that dies meanwhile loses nothing), or is
   * added again once BullMQ has completed it. A send without delay of a task whose job this process put back
   * in the delayed set (a waiting step woken by a release here) promotes that job.
   */
  async enqueueStep(task: StepTask, delayMs = 0): Promise<void> {
    const id = stepJobId(task);
    const inHand = this.stepsInHand.get(id);
    if (!inHand) {
      if (!(delayMs <= 0 && this.delayedHere.delete(id))) return this.addStep(task, delayMs);
      // Not delayed any more, the job has come back meanwhile: nothing to promote.
      await (await this.steps.getJob(id))?.promote().catch(() => undefined);
      return;
    }
    if (inHand.finishing && inHand.sendAt === undefined) {
      // Sent once BullMQ has completed the job (its `completed` event), or, should the completion fail, once
      // the job's lock has run out and it went back to the queue.
      setTimeout(() => this.letGo(id, inHand), inHand.lockMs).unref();
    }
    inHand.sendAt = Math.min(inHand.sendAt ?? Number.POSITIVE_INFINITY, Date.now() + delayMs);
  }

  /**
   * Notes a job put back in the delayed set, and forgets those due back already (they may run on another worker),
   * in the order they were noted, up to the first one not due yet.
   */
  private delayHere(id: string, dueAt: number): void {
    const now = Date.now();
    for (const [other, at] of this.delayedHere) {
      if (at > now) break;
      this.delayedHere.delete(other);
    }
    this.delayedHere.delete(id);
    this.delayedHere.set(id, dueAt);
  }

  /** A step job has left this process's hands: a send of its task that came while BullMQ completed it goes now. */
  private letGo(id: string, inHand: StepInHand): void {
    if (this.stepsInHand.get(id) !== inHand) return;
    this.stepsInHand.delete(id);
    if (inHand.sendAt === undefined) return;
    this.addStep(inHand.task, inHand.sendAt - Date.now()).catch((error: unknown) => {
      getLogger().warn(`a step task sent during its own job was lost: ${String(error)}`, {
        runId: inHand.task.runId,
      });
    });
  }

  private async addStep(task: StepTask, delayMs = 0): Promise<void> {
    await this.add(this.steps, "step", task, {
      jobId: stepJobId(task),
      delay: Math.max(0, delayMs),
      // A finished step job frees its id: its outcome is stored by then, so a re-sent task only wakes the run.
      removeOnComplete: true,
      removeOnFail: true,
      ...RETRY,
    });
  }

  /**
   * Starts consuming both queues in this process.
   * @throws ConfigurationError for a concurrency below 1
   */
  async consume(handlers: QueueHandlers, options: ConsumeOptions = {}): Promise<QueueConsumer> {
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new ConfigurationError(
        `concurrency must be a whole number ≥ 1, got ${JSON.stringify(options.concurrency)}.`,
      );
    }
    const workerId = options.workerId ?? defaultWorkerId();
    const stalledAfterMs = options.stalledAfterMs ?? 30_000;
    const locks = new RunLocks(this.connection.client, this.prefix, options.runLockMs ?? 30_000);
    const awaitingCode = new AwaitingCode(workerId);
    const logger = getLogger();
    // A lost connection is said once, and its return once, however many connections report it.
    const outage = new OutageLog(this.connection.url, { workerId });
    const onReady = () => outage.back();
    this.connection.client.on("ready", onReady);
    // Workers block on their connections, so each gets its own, with BullMQ's required settings.
    const clients: Redis[] = [];
    const workerConnection = () => {
      const client = this.connection.client.duplicate({ maxRetriesPerRequest: null, lazyConnect: false });
      client.on("error", () => {});
      client.on("ready", onReady);
      clients.push(client);
      return client;
    };
    const workerOptions = {
      prefix: `${this.prefix}bull`,
      concurrency,
      name: workerId,
      lockDuration: stalledAfterMs,
      stalledInterval: Math.max(500, Math.floor(stalledAfterMs / 2)),
      maxStalledCount: 3,
    };

    const inlineActivations = options.inlineActivations ?? true;
    /** The run's lock, waiting a moment for one being released (the activation that sent this step holds it until it returns). */
    const acquireSoon = async (runId: string) => {
      let lock = await locks.acquire(runId);
      for (const wait of INLINE_LOCK_WAITS) {
        if (lock) break;
        await new Promise((resolve) => setTimeout(resolve, wait));
        lock = await locks.acquire(runId);
      }
      return lock;
    };
    /** The run's lock as the engine's lease: let go during a long inline step, taken back after it. */
    const leaseOf = (runId: string, held: HeldLock): RunLease & { end(): Promise<void> } => {
      let lock: HeldLock | undefined = held;
      let timer: NodeJS.Timeout | undefined;
      let lettingGo: Promise<void> | undefined;
      // The attempt last run inline with the lock let go, claimed until the run has recorded it (the next
      // pause, or the end: both come after the commit, or the stored outcome, that follows the step).
      let claim: HeldLock | undefined;
      return {
        pause(step) {
          timer = setTimeout(() => {
            const previous = claim;
            // Claimed before the lock is let go: an activation that takes the lock and sends the step's task
            // again finds the claim (see `claimedFor` in the step worker).
            claim = locks.claim(step);
            lettingGo = Promise.all([lock?.release(), previous?.release()]).then(() => {});
            lock = undefined;
          }, LEASE_PAUSE_AFTER_MS);
          timer.unref();
        },
        async resume() {
          clearTimeout(timer);
          if (lock) return true;
          await lettingGo;
          lock = await acquireSoon(runId);
          return lock !== undefined;
        },
        async end() {
          clearTimeout(timer);
          await lettingGo;
          await lock?.release();
          lock = undefined;
          if (claim) await claim.release();
          claim = undefined;
        },
      };
    };
    const activateInline: InlineActivator = async (task) => {
      const lock = await acquireSoon(task.runId);
      if (!lock) return "busy";
      const lease = leaseOf(task.runId, lock);
      try {
        await handlers.activate(task, lease);
        return "done";
      } catch (error) {
        // The activation queue retries it with backoff, as any activation.
        logger.debug(`inline activation failed, queueing it: ${String(error)}`, {
          workerId,
          runId: task.runId,
        });
        return "again";
      } finally {
        await lease.end();
      }
    };

    const activationWorker = new bullmq.Worker<ActivationTask>(
      ACTIVATIONS_QUEUE,
      async (job: Job<ActivationTask>, token?: string) => {
        const lock = await locks.acquire(job.data.runId);
        if (!lock) {
          await job.moveToDelayed(Date.now() + relockDelay(), token);
          throw new bullmq.DelayedError();
        }
        const lease = leaseOf(job.data.runId, lock);
        try {
          await handlers.activate(
            { ...job.data, redelivered: job.data.redelivered === true || isRedelivery(job) },
            lease,
          );
        } catch (error) {
          if (!(error instanceof WorkflowNotFoundError)) throw error;
          await awaitingCode.putBack(job, token, { job: "activation", code: missingCodeOf(error), error });
        } finally {
          await lease.end();
        }
      },
      { ...workerOptions, connection: workerConnection() },
    );
    /** Runs a step job, and sends its task again after it when the step asked for that (see `enqueueStep`). */
    const runStepJob = async (job: Job<StepTask>, token: string | undefined, run: () => Promise<void>) => {
      const id = job.id as string;
      const inHand: StepInHand = { task: job.data, lockMs: stalledAfterMs };
      this.stepsInHand.set(id, inHand);
      this.delayedHere.delete(id);
      try {
        await run();
      } catch (error) {
        this.stepsInHand.delete(id);
        throw error;
      }
      if (inHand.sendAt !== undefined) {
        this.stepsInHand.delete(id);
        if (inHand.sendAt > Date.now()) this.delayHere(id, inHand.sendAt);
        await job.moveToDelayed(inHand.sendAt, token);
        throw new bullmq.DelayedError();
      }
      inHand.finishing = true;
    };
    const stepWorker = new bullmq.Worker<StepTask>(
      STEPS_QUEUE,
      async (job: Job<StepTask>, token?: string) => {
        // A task sent again may copy an attempt that a live worker runs inline: it waits until that one ends
        // (or its worker has been dead for a lock's time), then finds the attempt recorded, or runs it.
        const claimedMs = job.data.resent ? await locks.claimedFor(job.data) : 0;
        if (claimedMs > 0) {
          await job.moveToDelayed(Date.now() + claimedMs, token);
          throw new bullmq.DelayedError();
        }
        try {
          return await runStepJob(job, token, () =>
            this.executeStepJob(job, handlers, inlineActivations, activateInline),
          );
        } catch (error) {
          if (!(error instanceof StepNotFoundError)) throw error;
          const code = `step "${job.data.stepName}"`;
          return awaitingCode.putBack(job, token, { job: "step job", code, error });
        }
      },
      { ...workerOptions, connection: workerConnection() },
    );
    stepWorker.on("completed", (job) => {
      const id = job.id as string;
      const inHand = this.stepsInHand.get(id);
      if (inHand) this.letGo(id, inHand);
    });
    stepWorker.on("failed", (job) => {
      if (job) this.stepsInHand.delete(job.id as string);
    });
    for (const worker of [activationWorker, stepWorker]) {
      worker.on("failed", (job, error) => {
        if (!job) return;
        const final = job.attemptsMade >= (job.opts.attempts ?? 1);
        const context = {
          workerId,
          queue: worker.name,
          jobId: job.id,
          runId: (job.data as { runId?: string }).runId,
        };
        if (final)
          logger.error(`job failed for good after ${job.attemptsMade} attempts: ${error.message}`, context);
        else logger.warn(`job failed (attempt ${job.attemptsMade}), will retry: ${error.message}`, context);
      });
      worker.on("error", (error) => {
        const mapped = mapRedisError(error, this.connection);
        if (isConnectionFailure(error)) outage.lost(mapped);
        else logger.warn(`worker error: ${mapped.message}`, { workerId, queue: worker.name });
      });
    }
    await Promise.all([activationWorker.waitUntilReady(), stepWorker.waitUntilReady()]);

    let closing: Promise<void> | undefined;
    const consumer: QueueConsumer = {
      workerId,
      close: () => {
        closing ??= (async () => {
          // close() without force waits for the jobs in flight.
          await Promise.all([activationWorker.close(), stepWorker.close()]);
          this.connection.client.off("ready", onReady);
          await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
          this.consumers.delete(consumer);
        })();
        return closing;
      },
    };
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * One step job: with inline activations, the run's wake-up after the step runs in this job when the run's
   * lock is free (one wake-up per job: a second enqueueActivation for the same outcome goes to the queue).
   */
  private async executeStepJob(
    job: Job<StepTask>,
    handlers: QueueHandlers,
    inlineActivations: boolean,
    activateInline: InlineActivator,
  ): Promise<void> {
    if (!inlineActivations) return handlers.executeStep(job.data);
    const key = wakeKey(job.data.runId, job.data.stepId, job.data.attempt);
    // A step job delivered again may be one whose inline activation died after its commit: its wake-up says so.
    let used = false;
    const redelivered = isRedelivery(job);
    const once: InlineActivator = async (task) => {
      if (used) return "busy";
      used = true;
      const result = await activateInline({ ...task, redelivered });
      return result === "busy" && redelivered ? "again" : result;
    };
    this.inlineWakes.set(key, once);
    try {
      await handlers.executeStep(job.data);
    } finally {
      if (this.inlineWakes.get(key) === once) this.inlineWakes.delete(key);
    }
  }

  /** Drains and closes the consumers started here, then the queues and the connection (if opened here). */
  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((consumer) => consumer.close()));
    await Promise.all([this.activations.close(), this.steps.close()]);
    await closeRedis(this.connection);
  }

  private async add(queue: Queue, name: string, data: object, options: JobsOptions): Promise<void> {
    try {
      await queue.add(name, data, options);
    } catch (error) {
      throw mapRedisError(error, this.connection);
    }
  }
}

/** `<hostname>-<pid>`: unique per process on a machine, and per container (the hostname is the container id). */
export function defaultWorkerId(): string {
  return `${hostname() || "worker"}-${process.pid}`;
}
