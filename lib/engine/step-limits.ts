import { randomUUID } from "node:crypto";
import { CLOCK_TICK_MS, limitKey } from "../core/rate-limit.ts";
import type { AnyStep } from "../core/step.ts";
import type { Clock } from "../ports/clock.ts";
import { type EventStore, FINISHED_STATUSES } from "../ports/event-store.ts";
import type { RateLimitStore } from "../ports/rate-limit-store.ts";
import type { SlotStore } from "../ports/slot-store.ts";
import type { StepParking } from "../ports/step-parking.ts";
import type { StepTask } from "../ports/task-queue.ts";

/**
 * An attempt's body: it calls `began` with the time the step function begins, just before calling it. With
 * a `failure` (a limit's key function failed), the attempt fails with it instead, its step function not called.
 */
export type AttemptBody<T> = (began: (at: number) => void, failure?: unknown) => Promise<T>;
/** Runs an attempt's body once its start is granted. */
type StartFn = <T>(body: AttemptBody<T>) => Promise<T>;
const unreported = () => {
  // Without a rate limit, when the step function began is not reported anywhere.
};

/** Options of {@link StepLimits}. */
export interface StepLimitsOptions {
  /** Where the slots are held: one store shared by every worker the limits should span. */
  slots: SlotStore;
  /** A slot's lease, renewed every third of it while the step runs. @default 60,000 ms */
  leaseMs?: number;
  /**
   * How often a waiting task tries again when no release wakes it (in memory: another worker's release; in
   * the queue: a lost wake-up, a holder that died). Keep it under `leaseMs`: a place in line is a lease too.
   * @default 1,000 ms in memory; a third of `leaseMs` (20 s) when tasks wait in the queue
   */
  recheckMs?: number;
  /**
   * Where the starts of `step(..., { rateLimit })` are counted: one store shared by every worker.
   * @default none: an attempt of a step that declares a rate limit fails with a `ConfigurationError`
   */
  rates?: RateLimitStore;
  /**
   * Where tasks waiting for a slot are kept when they wait in the queue (see {@link StepLimits.waitInQueue}),
   * so that a release on any worker sends the first in line again. On AWS, the `DynamoDBSlotStore` itself.
   * @default none: tasks that wait in the queue come back only at their re-checks
   */
  parking?: StepParking;
  /**
   * Sends a task whose start must wait for its rate-limit turn again at `at` (epoch ms on the engine's clock).
   * The embedded runtime hands it to its timers, so that the turn comes on a virtual clock too (time skipping).
   * @default a timer in this process, on the real clock
   */
  sendAt?: (task: StepTask, at: number) => Promise<void>;
  /**
   * Sends a waiting task again at `at` (epoch ms on the engine's clock) in a way that outlives this process:
   * a task waiting for a slot comes back at each re-check, and one waiting for its rate-limit turn at its turn,
   * on any worker, even if this one dies meanwhile (a timer in this process would die with it). A release here
   * still sends the tasks parked here at once. The Redis runtime puts the task's job back in BullMQ's delayed set.
   * @default timers in this process (and `sendAt` for rate-limit turns)
   */
  sendLater?: (task: StepTask, at: number) => Promise<void>;
}

/** Sends a step task again after `delaySeconds` (1 to 900, SQS's longest delay: a longer wait comes back early and waits again). */
export type DelayedRequeue = (task: StepTask, delaySeconds: number) => Promise<void>;
/** The longest delay a waiting task is sent with (SQS's `DelaySeconds` limit). */
const MAX_QUEUE_DELAY_SECONDS = 900;

/** What the engine that uses the limits gives them. */
export interface StepLimitsHost {
  clock: Clock;
  /**
   * The runs' store: whether an attempt's outcome is stored (a copy that comes late must not wait, or run, for
   * nothing) and whether its run has ended (cancelled, failed…: its waiting steps then give up their place).
   */
  store: Pick<EventStore, "getOutcome" | "getRun">;
  /** Sends a waiting step task again, to try for a slot once more. */
  requeue(task: StepTask): Promise<void>;
}

/**
 * Step concurrency for one step executor (engine): an attempt of a limited step runs only while it
 * holds a slot of its key; without one it takes its place in line and its task is parked (it uses no
 * attempt and holds no worker). A release here wakes the tasks parked here for that key; a release
 * elsewhere is seen at the next re-check. Slots are released when the attempt ends, however it ends;
 * a worker that dies holding one loses it when the lease runs out.
 */
export class StepLimits {
  /**
   * Tasks waiting for a slot, per limit key, in the order they asked; with `sendLater`, until their job comes
   * back through the queue (`back`, on any worker: here, the task is then no longer known to be waiting).
   */
  private readonly parked = new Map<string, Map<string, { task: StepTask; sent: boolean; back?: number }>>();

  private readonly slots: SlotStore;
  private readonly leaseMs: number;
  private recheckMs: number;
  private readonly explicitRecheckMs: number | undefined;
  private readonly rates: RateLimitStore | undefined;
  private readonly parking: StepParking | undefined;
  private readonly sendAt: StepLimitsOptions["sendAt"];
  private readonly sendLater: StepLimitsOptions["sendLater"];
  /** Set when waiting tasks wait in the queue rather than in this process (see `waitInQueue`): sends a task again after `delayMs`. */
  private requeueAfter: ((task: StepTask, delayMs: number) => Promise<void>) | undefined;
  private host: StepLimitsHost | undefined;

  /**
   * @example
   * import { Engine, MemorySlotStore, StepLimits } from "tsworkflow/engine";
   * const engine = new Engine({ store, queue, timers, stepLimits: new StepLimits({ slots: new MemorySlotStore() }) });
   */
  constructor(options: StepLimitsOptions) {
    this.slots = options.slots;
    this.leaseMs = options.leaseMs ?? 60_000;
    this.explicitRecheckMs = options.recheckMs;
    this.recheckMs = options.recheckMs ?? 1_000;
    this.rates = options.rates;
    this.parking = options.parking;
    this.sendAt = options.sendAt;
    this.sendLater = options.sendLater;
  }

  /** Whether `step(..., { rateLimit })` is enforced (a rate limit store was given). */
  get enforcesRates(): boolean {
    return this.rates !== undefined;
  }

  /**
   * Makes waiting tasks wait in the queue instead of in this process, for workers that keep nothing between
   * tasks (a Lambda may be frozen as soon as its handler returns): a task that must wait is sent again with
   * `requeueAfter` (its turn under a rate limit, or its re-check), and one waiting for a slot is parked in
   * `parking` so that a release on any worker sends it again at once. The AWS runtime calls it.
   * @example
   * stepLimits.waitInQueue((task, delaySeconds) => queue.enqueueStep(task, delaySeconds));
   */
  waitInQueue(requeueAfter: DelayedRequeue): void {
    this.requeueAfter = (task, delayMs) =>
      requeueAfter(task, Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(1, Math.ceil(delayMs / 1000))));
    if (this.explicitRecheckMs === undefined) this.recheckMs = Math.floor(this.leaseMs / 3);
  }

  /** Called by the engine that uses these limits. */
  attach(host: StepLimitsHost): void {
    this.host = host;
  }

  private get options(): StepLimitsHost & { slots: SlotStore; leaseMs: number; recheckMs: number } {
    if (!this.host) throw new Error("StepLimits is used before an engine attached it");
    return { ...this.host, slots: this.slots, leaseMs: this.leaseMs, recheckMs: this.recheckMs };
  }

  /**
   * The limit key of a task, or undefined for a step without that limit.
   * @param option the step's `concurrency` (the default) or its `rateLimit`
   * @throws ConfigurationError when the limit's key function throws or returns no string
   */
  keyOf(
    task: StepTask,
    definition: AnyStep | undefined,
    option: "concurrency" | "rateLimit" = "concurrency",
  ): string | undefined {
    const limit = definition?.options[option];
    if (!limit) return undefined;
    return `step:${task.stepName}:${limitKey(`step("${task.stepName}")`, option, limit.key, task.input)}`;
  }

  /**
   * Runs `body` holding a slot of the step's limit, once its rate limit lets it start.
   * @returns `{ waiting: true }` when no slot is free or its start must wait: the task is sent again when
   *   its turn may have come
   */
  async run<T>(
    task: StepTask,
    definition: AnyStep | undefined,
    body: AttemptBody<T>,
  ): Promise<{ waiting: true } | { waiting: false; value: T }> {
    let key: string | undefined;
    let rateKey: string | undefined;
    try {
      key = this.keyOf(task, definition);
      rateKey = this.keyOf(task, definition, "rateLimit");
    } catch (error) {
      // A key function that fails fails the attempt, as a step that throws does: its run goes on.
      return { waiting: false, value: await body(unreported, error) };
    }
    const limit = definition?.options.concurrency?.limit;
    if (key === undefined || limit === undefined) {
      const start = await this.takeStart(task, definition, rateKey);
      if (!start) return { waiting: true };
      return { waiting: false, value: await start(body) };
    }
    const holder = `${task.runId}/${task.stepId}/${task.attempt}`;
    const token = randomUUID();
    const { slots, clock, leaseMs } = this.options;
    const request = () => ({ key, holder, token, limit, leaseMs, now: clock.now() });
    // A run cancelled while its step waited in line never runs that step.
    if (await this.runEnded(task.runId)) {
      await slots.release(key, holder, token);
      this.leaveLine(key, holder);
      await this.wake(key, limit);
      return { waiting: true };
    }
    const answer = await slots.acquire(request());
    // A copy of an attempt that another copy has run meanwhile (a duplicate delivery, a re-check or a wake-up
    // that crossed the release) gives its place or its slot back at once: waiting on, it would hold a place in
    // line until its next re-check, and running, it would run the step again.
    if (await this.attemptDone(task)) {
      await slots.release(key, holder, token);
      this.leaveLine(key, holder);
      if (answer === "granted") await this.wake(key, limit);
      return { waiting: true };
    }
    // "held": another copy of this attempt holds its slot. A live one (a duplicate delivery) stores the outcome,
    // which this copy finds at a re-check; a dead one (its worker was killed) loses the slot at its lease's
    // end, and this copy then takes its turn in line. Dropped here, the attempt would wait for the sweeper.
    if (answer !== "granted") {
      if (this.requeueAfter) await this.parkInQueue(key, holder, task, this.requeueAfter);
      else await this.park(key, holder, task);
      return { waiting: true };
    }
    this.leaveLine(key, holder);
    // Its start comes after its slot: a start counted while the step waited for a slot would bunch up the real starts.
    const start = await this.takeStart(task, definition, rateKey);
    if (!start) {
      await slots.release(key, holder, token);
      await this.wake(key, limit);
      return { waiting: true };
    }
    const renew = setInterval(
      () => {
        slots.acquire(request()).catch(() => {
          // A lost renewal matters only past the lease; the next one tries again.
        });
      },
      Math.max(50, Math.floor(leaseMs / 3)),
    );
    renew.unref();
    try {
      return { waiting: false, value: await start(body) };
    } finally {
      clearInterval(renew);
      await slots.release(key, holder, token);
      await this.wake(key, limit);
    }
  }

  /**
   * Counts the attempt's start against the step's rate limit (of key `key`). When it must wait, its task is
   * sent again at the turn the store announced (through `sendLater` or `sendAt`, else a timer in this process on
   * the real clock).
   * @returns undefined when the attempt must wait (or its run has ended meanwhile); else what runs the
   *   attempt and reports when its step function began (a granted start counts in every window until then:
   *   work granted but slow to begin on a busy worker never bunches up with later grants)
   */
  private async takeStart(
    task: StepTask,
    definition: AnyStep | undefined,
    key: string | undefined,
  ): Promise<StartFn | undefined> {
    const rate = definition?.options.rateLimit;
    const rates = this.rates;
    // Without a rate limit store, the engine fails the attempt with a ConfigurationError (see `unenforcedLimit`).
    if (!rate || !rates || key === undefined) return (body) => body(unreported);
    const { clock, requeue } = this.options;
    const holder = `${task.runId}/${task.stepId}/${task.attempt}`;
    // A run cancelled while its step waited for its turn gives its place up: the steps behind it, told their
    // turns counting on its start, would otherwise find it ahead of them until its place ran out (a minute).
    if (await this.runEnded(task.runId)) {
      await rates.leave(key, holder);
      return undefined;
    }
    const answer = await rates.take({
      key,
      holder,
      limit: rate.limit,
      periodMs: rate.periodMs + CLOCK_TICK_MS,
      now: clock.now(),
    });
    if (answer.granted)
      return async (body) => {
        // Reported as the step function begins (until it lands, the start counts in every window), then
        // once more after the attempt if that report failed.
        let report: Promise<boolean> | undefined;
        let beganAt: number | undefined;
        const value = await body((at) => {
          beganAt = at;
          report = rates.started(key, holder, at).then(
            () => true,
            () => false,
          );
        });
        if (beganAt !== undefined && !(await report)) await rates.started(key, holder, beganAt);
        return value;
      };
    if (this.requeueAfter) {
      await this.requeueAfter(task, answer.retryAt - clock.now());
      return undefined;
    }
    const sendAt = this.sendLater ?? this.sendAt;
    if (sendAt) {
      await sendAt(task, answer.retryAt);
      return undefined;
    }
    const send = () => {
      requeue(task).catch(() => {
        // The queue refused: try again a little later rather than lose the task.
        setTimeout(send, this.recheckMs).unref();
      });
    };
    setTimeout(send, Math.max(0, answer.retryAt - clock.now())).unref();
    return undefined;
  }

  /**
   * Keeps the task's place among those parked here (its first park), and arms its re-check: a timer here, or
   * with `sendLater` its job's return through the queue.
   */
  private async park(key: string, holder: string, task: StepTask): Promise<void> {
    let line = this.parked.get(key);
    if (!line) {
      line = new Map();
      this.parked.set(key, line);
    }
    if (!this.sendLater) {
      line.set(holder, { task, sent: false });
      this.recheck(key, holder);
      return;
    }
    const back = this.options.clock.now() + this.recheckMs;
    line.set(holder, { task, sent: false, back });
    await this.sendLater(task, back);
  }

  /**
   * Sends a parked task again after `recheckMs`, even if a wake sent it already: a queue may have dropped
   * that send as a duplicate of the job still running (BullMQ keeps a job id until the job ends).
   */
  private recheck(key: string, holder: string): void {
    setTimeout(() => this.send(key, holder, true), this.options.recheckMs).unref();
  }

  /**
   * Parks a task that waits for a slot where a release on any worker finds it, and sends it again at its
   * re-check (which also keeps its place in line alive).
   */
  private async parkInQueue(
    key: string,
    holder: string,
    task: StepTask,
    requeueAfter: (task: StepTask, delayMs: number) => Promise<void>,
  ) {
    const { clock, leaseMs } = this.options;
    await this.parking?.park(key, holder, task, clock.now() + leaseMs);
    await requeueAfter(task, this.recheckMs);
  }

  /** Sends again the first tasks parked for `key` (here, or in the parking when tasks wait in the queue), as many as the limit could let through. */
  private async wake(key: string, limit: number): Promise<void> {
    if (this.requeueAfter) {
      if (!this.parking) return;
      const line = await this.slots.inspect(key, this.options.clock.now()).catch(() => undefined);
      if (!line) return;
      const { holding, waiting } = line;
      const first = waiting.slice(0, Math.max(0, limit - holding.length));
      if (first.length === 0) return;
      // A wake-up that fails is not the attempt's failure: the waiting tasks come back at their re-checks.
      const tasks = await this.parking.parked(key, first).catch(() => []);
      await Promise.all(tasks.map((parked) => this.options.requeue(parked).catch(() => undefined)));
      return;
    }
    const line = this.parked.get(key);
    if (!line) return;
    const now = this.options.clock.now();
    for (const [holder, { back }] of line) if (back !== undefined && back <= now) this.leaveLine(key, holder);
    const first = [...line.entries()].filter(([, parked]) => !parked.sent).slice(0, limit);
    await Promise.all(first.map(([holder]) => this.send(key, holder)));
  }

  /**
   * Sends a parked task again (once until it parks again); it leaves the line when it gets its slot. A send
   * that fails is tried again at the next re-check: a release on another worker would not wake it here.
   */
  private async send(key: string, holder: string, again = false): Promise<void> {
    const parked = this.parked.get(key)?.get(holder);
    if (!parked || (parked.sent && !again)) return;
    parked.sent = true;
    await this.options.requeue(parked.task).catch(() => {
      parked.sent = false;
      this.recheck(key, holder);
    });
  }

  private async runEnded(runId: string): Promise<boolean> {
    return FINISHED_STATUSES.has((await this.options.store.getRun(runId))?.status ?? "pending");
  }

  private async attemptDone({ runId, stepId, attempt, issueSeq }: StepTask): Promise<boolean> {
    return (await this.options.store.getOutcome(runId, stepId, attempt, issueSeq)) !== undefined;
  }

  private leaveLine(key: string, holder: string): void {
    const line = this.parked.get(key);
    if (!line?.delete(holder)) return;
    if (line.size === 0) this.parked.delete(key);
  }
}
