/** What a scheduler remembers of one schedule between restarts. */
export interface ScheduleState {
  name: string;
  paused: boolean;
  /** Epoch ms of the last tick handled (fired, skipped or dropped): ticks after it are still due. */
  lastTick: number;
  /** The run started by the last fired tick, to apply the overlap policy. */
  lastRunId?: string;
  /** A tick held back by `overlap: "buffer-one"` until the previous run finishes. */
  bufferedTick?: number;
}

/** Where schedule state lives: memory, a file, Redis... */
export interface ScheduleStore {
  get(name: string): Promise<ScheduleState | undefined>;
  list(): Promise<ScheduleState[]>;
  put(state: ScheduleState): Promise<void>;
  delete(name: string): Promise<void>;
}
