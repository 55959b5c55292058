/** What a scheduler remembers of one schedule between restarts. */
export interface ScheduleState {
  name: string;
  paused: boolean;
  /**
   * Epoch ms after which ticks are still due: the last tick handled (fired, skipped, dropped or given up), or
   * when the schedule was created or resumed. Not always a tick: what listings call the last tick is
   * `lastFiredTick`.
   */
  lastTick: number;
  /** Epoch ms of the last tick that started a run (`lastTick` of `listSchedules`); absent until one has. */
  lastFiredTick?: number;
  /** The run started by the last fired tick, to apply the overlap policy. */
  lastRunId?: string;
  /** A tick held back by `overlap: "buffer-one"` until the previous run finishes. */
  bufferedTick?: number;
  /** Epoch ms of a `tsworkflow schedules trigger` not carried out yet: the next check starts a run for it. */
  triggerRequestedAt?: number;
  /** What the code declares (written at each start): lets tools without the code show the schedule. */
  declaration?: ScheduleDeclaration;
  /** The last attempt to start a run that failed; removed by the next attempt that goes through. */
  lastError?: ScheduleError;
}

/** A failed attempt of a schedule to start a run, as its state keeps it. */
export interface ScheduleError {
  /** Epoch ms of the attempt. */
  at: number;
  /** Epoch ms of the tick it was for; none for a trigger. */
  tick?: number;
  /** The error's name (`WorkflowInputError`, `Error`…). */
  name: string;
  /** The error's code, when it has one (`INVALID_INPUT`). */
  code?: string;
  /** The error's message. */
  message: string;
  /**
   * Epoch ms from which it is tried again, for an error that may pass (the store or Redis unreachable);
   * none when the tick was given up (its start can only fail the same way: invalid args, say).
   */
  retryAt?: number;
}

/** A schedule's declaration as stored: its workflow, and when it ticks. */
export interface ScheduleDeclaration {
  workflow: string;
  cron?: string;
  timezone?: string;
  /** The `every` interval in ms. */
  everyMs?: number;
  /** Epoch ms of `startAt` and `endAt`. */
  startAt?: number;
  endAt?: number;
  /**
   * Set on AWS for an `every` without `startAt`: EventBridge's `rate()` counts from the schedule's creation,
   * whose time the state does not keep, so tools show no next fire times for it.
   * @default from `startAt`, else from the epoch (the embedded and Redis schedulers)
   */
  everyFrom?: "creation";
}

/** Where schedule state lives: memory, a file, Redis... */
export interface ScheduleStore {
  get(name: string): Promise<ScheduleState | undefined>;
  list(): Promise<ScheduleState[]>;
  put(state: ScheduleState): Promise<void>;
  delete(name: string): Promise<void>;
  /**
   * Runs `work` while no other process sharing this store runs its own (a lease held for its duration);
   * resolves without running it when another holds the lease (that one handles the due ticks).
   * @default none: a store of one process needs no lease
   */
  exclusive?(work: () => Promise<void>): Promise<void>;
}
