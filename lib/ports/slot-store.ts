/**
 * Concurrency slots shared by every worker of a backend: at most `limit` holders per key at once, the
 * others waiting in line in arrival order. Slots and places in line are leases: a holder that is not
 * heard of again before its lease ends (a crashed worker) loses its slot, so slots never leak.
 */
export interface SlotRequest {
  /** The limit's key, e.g. `step:charge_card:tenant-42`. */
  key: string;
  /** Holders allowed at once for this key. */
  limit: number;
  /** Who asks, the same on every try (e.g. the step attempt): it keeps its place in line between tries. */
  holder: string;
  /** This execution of the holder: a second copy of the same holder (a duplicate delivery) gets no slot. */
  token: string;
  /** How long the slot, or the place in line, holds without another `acquire` (which renews it). */
  leaseMs: number;
  /** The caller's clock (ms since the epoch). */
  now: number;
}

/** What `SlotStore.acquire` answers. */
export type SlotAnswer = "granted" | "waiting" | "held";

export interface SlotStore {
  /**
   * Takes a slot when the holder is among the first in line that fit under the limit, else keeps (or
   * takes) its place at the end of the line. Called again by the holder with the same token while it
   * holds the slot, it renews the lease. Atomic: concurrent callers never exceed the limit.
   * @returns `"granted"` when the caller holds a slot now, `"waiting"` when it is in line, `"held"` when
   *   another copy of the same holder (another token) holds its slot
   */
  acquire(request: SlotRequest): Promise<SlotAnswer>;
  /** Gives back the holder's slot (if `token` holds it) or its place in line. */
  release(key: string, holder: string, token: string): Promise<void>;
  /** The holders of a key's slots and the line behind them, in order, leases still running at `now`. */
  inspect(key: string, now: number): Promise<{ holding: string[]; waiting: string[] }>;
}
