/**
 * Start rates shared by every worker of a backend: at most `limit` starts per key in any window of
 * `periodMs` (a sliding log of the last period's starts), the callers that must wait kept in line in
 * arrival order, each told when its turn should come.
 */
export interface RateRequest {
  /** The limit's key, e.g. `step:send_email:tenant-42`. */
  key: string;
  /** Starts allowed per period for this key. */
  limit: number;
  /** The period, in ms. */
  periodMs: number;
  /** Who asks, the same on every try (e.g. the step attempt): it keeps its place in line between tries, and a start it got is not taken twice. */
  holder: string;
  /** The caller's clock (ms since the epoch): a start is counted at the time it is granted. */
  now: number;
}

/** How long past its announced turn a place in line is kept for a caller that does not come back. */
export const RATE_LINE_GRACE_MS = 60_000;
/**
 * A start granted but not yet reported by `started` counts as if it began this long after its grant (so
 * it stays in the window until it is reported; a holder that died before reporting stops counting then).
 */
export const UNREPORTED_START_MS = 60_000;

/** What `RateLimitStore.take` answers: a start now, or the time to ask again (when the holder's turn should come). */
export type RateAnswer = { granted: true } | { granted: false; retryAt: number };

export interface RateLimitStore {
  /**
   * Counts a start for the holder when fewer than `limit` starts fall in the last `periodMs` and no one is
   * in line before it; otherwise keeps (or takes) its place in line and says when to ask again. A holder
   * whose start still counts gets `granted` again (a duplicate delivery takes no second start). Atomic:
   * concurrent callers never exceed the limit.
   */
  take(request: RateRequest): Promise<RateAnswer>;
  /**
   * Reports when a granted start's work really began (`at`, not before its grant). Until then the start
   * counts in every window (see `UNREPORTED_START_MS`), so that work granted but slow to begin (a busy
   * worker) never lets later grants bunch up with it: the window counts the real starts.
   */
  started(key: string, holder: string, at: number): Promise<void>;
  /**
   * Gives up the holder's place in line and its start, if it has either: for a holder that will never begin
   * (a run cancelled while it waited). Those behind it move up; nothing happens for a holder the store does not
   * know.
   */
  leave(key: string, holder: string): Promise<void>;
  /** The holders whose starts count at `now`, oldest first, and the line behind them. */
  inspect(key: string, periodMs: number, now: number): Promise<{ started: string[]; waiting: string[] }>;
}

/**
 * When the caller behind `ahead` others should get its start: once the start `ahead` places into the
 * (time-ordered) log has left the window, a period later for each full round of the log. An estimate
 * that spreads the line's wake-ups; the caller is checked again then. With no start in the window (those
 * ahead were told their turn and have not come back yet), it asks again a period's share later.
 */
export function turnOf(
  started: readonly number[],
  ahead: number,
  periodMs: number,
  limit: number,
  now: number,
): number {
  const count = started.length;
  if (count === 0) return now + Math.ceil(periodMs / limit);
  // A start not reported yet is about to begin: estimate it as beginning now.
  const times = started.map((at) => Math.min(at, now)).sort((a, b) => a - b);
  return (times[ahead % count] as number) + periodMs * (1 + Math.floor(ahead / count));
}
