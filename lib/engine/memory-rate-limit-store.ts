import {
  RATE_LINE_GRACE_MS,
  type RateAnswer,
  type RateLimitStore,
  type RateRequest,
  turnOf,
  UNREPORTED_START_MS,
} from "../ports/rate-limit-store.ts";

interface KeyRates {
  /** Holder → the time its work began (for a start not reported yet: its grant + `UNREPORTED_START_MS`). */
  started: Map<string, number>;
  /** Holder → the end of its place in line; insertion order is arrival order. */
  waiting: Map<string, number>;
}

/**
 * Start rates in this process's memory, for the embedded runtime (memory and file backends, one process).
 * Each call runs to its end without awaiting, so it is atomic for the event loop. Starts are not kept
 * across a restart: the first period after one may see up to twice the limit.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly keys = new Map<string, KeyRates>();

  async take({ key, limit, periodMs, holder, now }: RateRequest): Promise<RateAnswer> {
    const rates = this.live(key, periodMs, now);
    if (rates.started.has(holder)) return { granted: true };
    if (!rates.waiting.has(holder)) rates.waiting.set(holder, Number.POSITIVE_INFINITY);
    const free = limit - rates.started.size;
    const position = [...rates.waiting.keys()].indexOf(holder);
    if (position < free) {
      rates.waiting.delete(holder);
      rates.started.set(holder, now + UNREPORTED_START_MS);
      return { granted: true };
    }
    const retryAt = turnOf([...rates.started.values()], position - Math.max(0, free), periodMs, limit, now);
    rates.waiting.set(holder, retryAt + RATE_LINE_GRACE_MS);
    return { granted: false, retryAt };
  }

  async started(key: string, holder: string, at: number): Promise<void> {
    const rates = this.keys.get(key);
    if (!rates) return;
    if (rates.started.has(holder)) rates.started.set(holder, at);
  }

  async leave(key: string, holder: string): Promise<void> {
    const rates = this.keys.get(key);
    rates?.started.delete(holder);
    rates?.waiting.delete(holder);
  }

  async inspect(
    key: string,
    periodMs: number,
    now: number,
  ): Promise<{ started: string[]; waiting: string[] }> {
    const rates = this.live(key, periodMs, now);
    return { started: [...rates.started.keys()], waiting: [...rates.waiting.keys()] };
  }

  /** The key's starts within the period before `now`, and its line without the places that ran out. */
  private live(key: string, periodMs: number, now: number): KeyRates {
    let rates = this.keys.get(key);
    if (!rates) {
      rates = { started: new Map(), waiting: new Map() };
      this.keys.set(key, rates);
    }
    for (const [holder, at] of rates.started) if (at <= now - periodMs) rates.started.delete(holder);
    for (const [holder, until] of rates.waiting) if (until <= now) rates.waiting.delete(holder);
    return rates;
  }
}
