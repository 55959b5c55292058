import { toMilliseconds } from "../core/durations.ts";
import { ConfigurationError } from "../core/errors.ts";
import { getLogger } from "../core/logger.ts";
import { optional } from "../core/optional.ts";
import { type Clock, FINISHED_STATUSES, systemClock } from "../ports/index.ts";
import type { Runtime } from "../ports/runtime.ts";
import type {
  ScheduleDeclaration,
  ScheduleError,
  ScheduleState,
  ScheduleStore,
} from "../ports/schedule-store.ts";
import { declarationOf, type ScheduleDefinition, ticker, tickKey, triggerKey } from "./schedule.ts";
import { dateOf, failureOf, type ScheduleFailure, sentence, startFailed } from "./start-failure.ts";

export type { ScheduleFailure } from "./start-failure.ts";

/** Options of {@link Scheduler}. */
export interface SchedulerOptions {
  /** Where ticks start runs (and the overlap policy reads the last one). */
  runtime: Pick<Runtime, "start" | "getRun">;
  store: ScheduleStore;
  schedules: ScheduleDefinition[];
  /** @default the system clock */
  clock?: Clock;
  /** Told of each tick that started nothing (overlap "skip", dropped catchup). @default ignore */
  onSkip?: (name: string, tick: number, reason: string) => void;
  /**
   * Keep a timer armed for the next tick. Off, ticks fire only through `runDue()` (time-skipping tests
   * call it when their clock reaches `nextWake()`).
   * @default true
   */
  armTimer?: boolean;
}

/** One schedule as `listSchedules` shows it. */
export interface ScheduleInfo {
  name: string;
  workflow: string;
  paused: boolean;
  /** The last tick that started a run; absent until one has (a tick skipped or given up is not one). */
  lastTick?: Date;
  /** The run started last, by a tick or by `triggerSchedule`. */
  lastRunId?: string;
  /** The next (up to) 5 fire times. */
  nextFireTimes: Date[];
  /** The last attempt to start a run that failed, until an attempt goes through. */
  lastError?: ScheduleFailure;
}

/** A tick is on time (not "missed") when handled within this long after it. */
const ON_TIME_MS = 60_000;
/** The longest a scheduler sleeps before reading its store again (a pause or resume made elsewhere, the CLI). */
const STORE_POLL_MS = 60_000;
/** A start that failed for a reason that may pass (the store unreachable) is tried again after this long. */
const RETRY_MS = 5_000;

/**
 * Fires the declared schedules of one process: reconciles them with the store at `start()`, then
 * handles due ticks (`runDue`) and arms a timer for the next one. State is in the store, so a new
 * process resumes where the last stopped, missed ticks handled by each schedule's `catchup`.
 */
export class Scheduler {
  readonly #runtime: Pick<Runtime, "start" | "getRun">;
  readonly #store: ScheduleStore;
  readonly #clock: Clock;
  readonly #onSkip: NonNullable<SchedulerOptions["onSkip"]>;
  readonly #armTimer: boolean;
  readonly #schedules = new Map<string, ScheduleDefinition>();
  /** Schedules this scheduler found paused (so that it sees a resume made by another process). */
  readonly #seenPaused = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = true;

  constructor(options: SchedulerOptions) {
    this.#runtime = options.runtime;
    this.#store = options.store;
    this.#clock = options.clock ?? systemClock;
    this.#onSkip = options.onSkip ?? (() => undefined);
    this.#armTimer = options.armTimer ?? true;
    for (const definition of options.schedules) {
      if (this.#schedules.has(definition.name))
        throw new ConfigurationError(
          `Two schedules are named "${definition.name}": give each a unique name.`,
        );
      this.#schedules.set(definition.name, definition);
    }
  }

  /** Creates the state of new schedules, removes the state of schedules no longer declared. */
  async reconcile(): Promise<void> {
    const now = this.#clock.now();
    for (const state of await this.#store.list())
      if (!this.#schedules.has(state.name)) await this.#store.delete(state.name);
    for (const definition of this.#schedules.values()) {
      const declaration = declarationOf(definition);
      const state = await this.#store.get(definition.name);
      if (!state)
        await this.#store.put({
          name: definition.name,
          paused: definition.options.paused ?? false,
          lastTick: now,
          declaration,
        });
      else if (JSON.stringify(state.declaration) !== JSON.stringify(declaration))
        await this.#store.put({ ...state, declaration });
    }
  }

  /** Reconciles, handles due ticks and keeps a timer armed for the next. */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.reconcile();
    await this.#wake();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Handles every tick due at the clock's time (for time-skipping tests; `start()` calls it itself). */
  runDue(): Promise<void> {
    const run = this.#running.then(() => this.#runDueNow());
    this.#running = run.catch(() => undefined);
    return run;
  }

  async listSchedules(): Promise<ScheduleInfo[]> {
    const states = await this.#store.list();
    return states.flatMap((state) => {
      const definition = this.#schedules.get(state.name);
      if (!definition) return [];
      const nextFireTimes: Date[] = [];
      let after = Math.max(state.lastTick, this.#clock.now());
      for (let i = 0; i < 5; i++) {
        const tick = definition.nextTick(after);
        if (tick === undefined) break;
        nextFireTimes.push(new Date(tick));
        after = tick;
      }
      return [
        {
          name: state.name,
          workflow: definition.workflow.name,
          paused: state.paused,
          ...optional("lastTick", dateOf(state.lastFiredTick)),
          ...optional("lastRunId", state.lastRunId),
          nextFireTimes: state.paused ? [] : nextFireTimes,
          ...optional("lastError", state.lastError && failureOf(state.lastError)),
        },
      ];
    });
  }

  async pauseSchedule(name: string): Promise<void> {
    await this.#store.put({ ...(await this.#state(name)), paused: true });
  }

  /** Resumes from now: ticks that fell while paused are not caught up. */
  async resumeSchedule(name: string): Promise<void> {
    await this.#store.put({ ...(await this.#state(name)), paused: false, lastTick: this.#clock.now() });
    await this.#wake();
  }

  /** Starts a run now, outside the schedule's ticks (its key is `schedule:<name>:manual:<time>`). */
  async triggerSchedule(name: string): Promise<{ runId: string }> {
    const state = await this.#state(name);
    const runId = await this.#startManual(name, this.#clock.now());
    await this.#store.put({ ...state, lastRunId: runId });
    return { runId };
  }

  async #startManual(name: string, at: number): Promise<string> {
    const definition = this.#schedules.get(name) as ScheduleDefinition;
    const { runId } = await this.#runtime.start(definition.workflow, definition.options.args ?? [], {
      idempotencyKey: triggerKey(name, at),
    });
    return runId;
  }

  /** Deletes the schedule's state and stops firing it in this process. */
  async deleteSchedule(name: string): Promise<void> {
    await this.#state(name);
    this.#schedules.delete(name);
    await this.#store.delete(name);
  }

  async #state(name: string): Promise<ScheduleState> {
    const state = this.#schedules.has(name) ? await this.#store.get(name) : undefined;
    if (!state)
      throw new ConfigurationError(
        `No schedule named "${name}" in this runtime${this.#schedules.size > 0 ? `: its schedules are ${[...this.#schedules.keys()].join(", ")}` : ""}. A schedule is declared with schedule() in a module the runtime imports (or passed in its schedules option), and stored once the runtime has started.`,
      );
    return state;
  }

  async #wake(): Promise<void> {
    let next: number | undefined;
    try {
      await this.runDue();
      next = await this.nextWake();
    } catch (error) {
      // The store is out of reach (Redis down, a disk error): the timer must stay armed all the same.
      next = this.#clock.now() + RETRY_MS;
      getLogger().error(
        `The schedules could not be handled: ${sentence((error as Error).message)} Tried again in ${RETRY_MS / 1000} s.`,
        { error: (error as Error).message },
      );
    }
    if (this.#stopped || !this.#armTimer) return;
    clearTimeout(this.#timer);
    const delay = Math.min(
      Math.max((next ?? Number.POSITIVE_INFINITY) - this.#clock.now(), 0),
      STORE_POLL_MS,
    );
    this.#timer = setTimeout(() => void this.#wake().catch(() => undefined), delay);
    this.#timer.unref?.();
  }

  /** When the next tick (or a buffered tick's check) is due, epoch ms; undefined when none will be. */
  async nextWake(): Promise<number | undefined> {
    let earliest: number | undefined;
    for (const state of await this.#store.list()) {
      const definition = this.#schedules.get(state.name);
      if (!definition || state.paused) continue;
      const found = definition.nextTick(state.lastTick);
      if (found === undefined) continue;
      const tick = Math.max(found, state.lastError?.retryAt ?? found);
      const jitter = definition.options.jitter
        ? Math.random() * toMilliseconds(definition.options.jitter)
        : 0;
      // A buffered tick waits for its previous run: poll for it once a second.
      const wake =
        state.bufferedTick === undefined ? tick + jitter : Math.min(tick, this.#clock.now() + 1000);
      earliest = earliest === undefined ? wake : Math.min(earliest, wake);
    }
    return earliest;
  }

  async #runDueNow(): Promise<void> {
    // A store shared by several processes (Redis) lets one at a time handle the ticks.
    if (this.#store.exclusive) await this.#store.exclusive(() => this.#handleDue());
    else await this.#handleDue();
  }

  async #handleDue(): Promise<void> {
    const now = this.#clock.now();
    for (const definition of [...this.#schedules.values()]) {
      let state = await this.#store.get(definition.name);
      if (!state) continue;
      if (state.paused) this.#seenPaused.add(definition.name);
      else if (this.#seenPaused.delete(definition.name) && (state.lastTick ?? 0) < now)
        // Resumed by another process (the CLI) since this one found it paused: it goes on from now, when this
        // process reads it (within STORE_POLL_MS), and the ticks in between fire no more than paused ones.
        state = { ...state, lastTick: now };
      if (state.paused && state.triggerRequestedAt === undefined) continue;
      // A start that failed for a reason that may pass waits for its retry time.
      if ((state.lastError?.retryAt ?? 0) > now) continue;
      await this.#store.put(await this.#handle(definition, state, now));
    }
  }

  /**
   * Fires what is due for one schedule and returns its new state. A start that fails is recorded in
   * `lastError` and logged: given up when it can only fail again (the tick counts as handled), otherwise
   * tried again from `retryAt` (the tick and the ones after it wait). Other schedules go on either way.
   */
  async #handle(definition: ScheduleDefinition, state: ScheduleState, now: number): Promise<ScheduleState> {
    const { options, name } = definition;
    const next: ScheduleState = { ...state };
    /** Runs one start (or check); false when it failed and must be tried again later. */
    const attempt = async (tick: number | undefined, start: () => Promise<unknown>): Promise<boolean> => {
      try {
        await start();
        delete next.lastError;
        return true;
      } catch (error) {
        next.lastError = this.#failed(definition, error, now, tick);
        return next.lastError.retryAt === undefined;
      }
    };
    // A trigger stored by another process (the CLI): once, by its time (a repeat finds the same run).
    const requested = next.triggerRequestedAt;
    if (requested !== undefined) {
      const started = await attempt(undefined, async () => {
        next.lastRunId = await this.#startManual(name, requested);
      });
      if (!started) return next;
      delete next.triggerRequestedAt;
    }
    if (next.paused) return next;
    const buffered = next.bufferedTick;
    if (buffered !== undefined) {
      let waiting = false;
      const handled = await attempt(buffered, async () => {
        waiting = await this.#previousRunning(next);
        if (!waiting) await this.#fire(definition, buffered, next);
      });
      if (!handled) return next;
      if (!waiting) delete next.bufferedTick;
    }
    const due: number[] = [];
    for (let tick = definition.nextTick(state.lastTick); tick !== undefined && tick <= now; ) {
      due.push(tick);
      tick = definition.nextTick(tick);
    }
    const window = toMilliseconds(options.catchupWindow ?? "1d");
    const catchup = options.catchup ?? "none";
    const overlap = options.overlap ?? "skip";
    for (const tick of due) {
      const missed = now - tick > ON_TIME_MS;
      if (
        missed &&
        (catchup === "none" || now - tick > window || (catchup === "last" && tick !== due.at(-1)))
      ) {
        this.#onSkip(name, tick, `missed (catchup "${catchup}")`);
      } else {
        const handled = await attempt(tick, async () => {
          if (overlap === "allow" || !(await this.#previousRunning(next)))
            await this.#fire(definition, tick, next);
          else if (overlap === "buffer-one" && next.bufferedTick === undefined) next.bufferedTick = tick;
          else this.#onSkip(name, tick, "the previous run is still going");
        });
        if (!handled) return next;
      }
      next.lastTick = tick;
    }
    return next;
  }

  /** Logs a failed start and says what the state keeps of it. */
  #failed(
    definition: ScheduleDefinition,
    error: unknown,
    now: number,
    tick: number | undefined,
  ): ScheduleError {
    return startFailed(definition, error, now, tick, {
      retried: `Tried again in ${RETRY_MS / 1000} s.`,
      retryAt: now + RETRY_MS,
      apply: "restart",
    }).failure;
  }

  async #previousRunning(state: ScheduleState): Promise<boolean> {
    if (state.lastRunId === undefined) return false;
    const run = await this.#runtime.getRun(state.lastRunId);
    return run !== undefined && !FINISHED_STATUSES.has(run.status);
  }

  /** Starts the run of `tick`, and records it in `state`. */
  async #fire(definition: ScheduleDefinition, tick: number, state: ScheduleState): Promise<void> {
    const { runId } = await this.#runtime.start(definition.workflow, definition.options.args ?? [], {
      idempotencyKey: tickKey(definition.name, tick),
    });
    state.lastRunId = runId;
    state.lastFiredTick = tick;
  }
}

/**
 * The next `count` fire times of a stored declaration after `after` (what `tsworkflow schedules list` shows).
 * @example
 * import { nextFireTimes } from "tsworkflow/engine";
 * nextFireTimes({ workflow: "report", cron: "0 9 * * *", timezone: "Europe/Paris" }, Date.now(), 3);
 */
export function nextFireTimes(declaration: ScheduleDeclaration, after: number, count: number): Date[] {
  return fireTimes("declared", declaration, after, count);
}

/**
 * The next fire times of a stored schedule as tools without the code show them (none while it is paused),
 * or why its stored declaration gives none (a timezone stored by an older version that no longer checks
 * it): one bad schedule must not hide the others.
 */
export function storedFireTimes(
  state: ScheduleState,
  now: number,
  count: number,
): { times: Date[]; problem?: string } {
  // An AWS `every` without startAt counts from its EventBridge schedule's creation, a time the state lacks.
  if (state.paused || !state.declaration || state.declaration.everyFrom === "creation") return { times: [] };
  try {
    return { times: fireTimes(state.name, state.declaration, Math.max(state.lastTick, now), count) };
  } catch (error) {
    return { times: [], problem: (error as Error).message };
  }
}

function fireTimes(name: string, declaration: ScheduleDeclaration, after: number, count: number): Date[] {
  const nextTick = ticker(name, {
    ...(declaration.cron === undefined
      ? { every: declaration.everyMs ?? 60_000 }
      : { cron: declaration.cron, timezone: declaration.timezone ?? "UTC" }),
    ...(declaration.startAt === undefined ? {} : { startAt: new Date(declaration.startAt) }),
    ...(declaration.endAt === undefined ? {} : { endAt: new Date(declaration.endAt) }),
  });
  const times: Date[] = [];
  for (let tick = nextTick(after); tick !== undefined && times.length < count; ) {
    times.push(new Date(tick));
    tick = nextTick(tick);
  }
  return times;
}
