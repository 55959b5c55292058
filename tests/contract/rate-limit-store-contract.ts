import { describe, expect, it } from "vitest";
import type { RateLimitStore } from "../../lib/ports/rate-limit-store.ts";

/** Makes a fresh, empty rate limit store for each test. */
export interface RateLimitStoreHarness {
  create(): Promise<{ rates: RateLimitStore; close(): Promise<void> }>;
}

const T0 = Date.parse("2030-01-01T00:00:00.000Z");
const PERIOD = 60_000;

/** What every `RateLimitStore` adapter must do; each adapter's test file calls it. */
export function describeRateLimitStoreContract(name: string, harness: RateLimitStoreHarness): void {
  describe(`${name} (RateLimitStore contract)`, () => {
    async function withRates(body: (rates: RateLimitStore) => Promise<void>) {
      const { rates, close } = await harness.create();
      try {
        await body(rates);
      } finally {
        await close();
      }
    }
    /** Asks for a start and, when granted, reports that the work began at once (as a quick step does). */
    const take = async (rates: RateLimitStore, holder: string, now = T0, limit = 2, key = "k") => {
      const answer = await rates.take({ key, holder, limit, periodMs: PERIOD, now });
      if (answer.granted) await rates.started(key, holder, now);
      return answer;
    };

    it("grants up to the limit in a period, then tells each caller in line when its turn comes", async () => {
      await withRates(async (rates) => {
        expect(await take(rates, "a", T0)).toEqual({ granted: true });
        expect(await take(rates, "b", T0 + 10)).toEqual({ granted: true });
        expect(await take(rates, "c", T0 + 20)).toEqual({ granted: false, retryAt: T0 + PERIOD });
        expect(await take(rates, "d", T0 + 20)).toEqual({ granted: false, retryAt: T0 + 10 + PERIOD });
        expect(await take(rates, "e", T0 + 20)).toEqual({ granted: false, retryAt: T0 + 2 * PERIOD });
        expect(await rates.inspect("k", PERIOD, T0 + 20)).toEqual({
          started: ["a", "b"],
          waiting: ["c", "d", "e"],
        });
      });
    });

    it("lets the line through in arrival order as starts leave the window", async () => {
      await withRates(async (rates) => {
        await take(rates, "a", T0, 1);
        await take(rates, "b", T0 + 1, 1);
        await take(rates, "c", T0 + 2, 1);
        // c asks first at the end of the period, but b was in line before it.
        expect((await take(rates, "c", T0 + PERIOD, 1)).granted).toBe(false);
        expect(await take(rates, "b", T0 + PERIOD, 1)).toEqual({ granted: true });
        expect(await take(rates, "c", T0 + PERIOD + 1, 1)).toEqual({
          granted: false,
          retryAt: T0 + 2 * PERIOD,
        });
        expect(await take(rates, "c", T0 + 2 * PERIOD, 1)).toEqual({ granted: true });
      });
    });

    it("counts a holder's start once (a duplicate delivery takes no second start)", async () => {
      await withRates(async (rates) => {
        expect(await take(rates, "a", T0, 1)).toEqual({ granted: true });
        expect(await take(rates, "a", T0 + 5, 1)).toEqual({ granted: true });
        expect((await take(rates, "b", T0 + 5, 1)).granted).toBe(false);
      });
    });

    it("drops a caller that does not come back long after its turn, so the line is not held up", async () => {
      await withRates(async (rates) => {
        await take(rates, "a", T0, 1);
        expect((await take(rates, "gone", T0, 1)).granted).toBe(false);
        expect((await take(rates, "c", T0, 1)).granted).toBe(false);
        // "gone" was told T0 + PERIOD and never asked again; a while later c is not kept behind it.
        expect(await take(rates, "c", T0 + 3 * PERIOD, 1)).toEqual({ granted: true });
      });
    });

    it("counts a granted start in every window until its work is reported to have begun, then from then on", async () => {
      await withRates(async (rates) => {
        expect(await rates.take({ key: "k", holder: "slow", limit: 1, periodMs: PERIOD, now: T0 })).toEqual({
          granted: true,
        });
        // Its work has not begun yet (a busy worker): a period later it still counts.
        expect((await take(rates, "b", T0 + PERIOD, 1)).granted).toBe(false);
        await rates.started("k", "slow", T0 + PERIOD + 30);
        expect(await take(rates, "b", T0 + 2 * PERIOD, 1)).toEqual({
          granted: false,
          retryAt: T0 + 2 * PERIOD + 30,
        });
        expect(await take(rates, "b", T0 + 2 * PERIOD + 30, 1)).toEqual({ granted: true });
      });
    });

    it("gives up a holder's place in line when it leaves: those behind it move up", async () => {
      await withRates(async (rates) => {
        await take(rates, "a", T0, 1);
        await take(rates, "b", T0 + 1, 1);
        expect(await take(rates, "c", T0 + 2, 1)).toEqual({ granted: false, retryAt: T0 + 2 * PERIOD });

        await rates.leave("k", "b");

        expect(await rates.inspect("k", PERIOD, T0 + 3)).toEqual({ started: ["a"], waiting: ["c"] });
        expect(await take(rates, "c", T0 + 3, 1)).toEqual({ granted: false, retryAt: T0 + PERIOD });
        expect(await take(rates, "c", T0 + PERIOD, 1)).toEqual({ granted: true });
      });
    });

    it("gives up a start granted to a holder that leaves, reported or not, so that the next caller gets it", async () => {
      await withRates(async (rates) => {
        expect(await rates.take({ key: "k", holder: "a", limit: 2, periodMs: PERIOD, now: T0 })).toEqual({
          granted: true,
        });
        expect(await take(rates, "b", T0, 2)).toEqual({ granted: true });
        expect((await take(rates, "c", T0 + 1, 2)).granted).toBe(false);

        await rates.leave("k", "a");
        await rates.leave("k", "b");

        expect(await take(rates, "c", T0 + 2, 2)).toEqual({ granted: true });
        expect(await take(rates, "d", T0 + 2, 2)).toEqual({ granted: true });
      });
    });

    it("does nothing when a holder it does not know leaves", async () => {
      await withRates(async (rates) => {
        await rates.leave("nothing here", "a");
        await take(rates, "a", T0, 1);
        await rates.leave("k", "stranger");
        expect(await rates.inspect("k", PERIOD, T0)).toEqual({ started: ["a"], waiting: [] });
      });
    });

    it("keeps keys apart", async () => {
      await withRates(async (rates) => {
        expect(await take(rates, "a", T0, 1, "k1")).toEqual({ granted: true });
        expect(await take(rates, "b", T0, 1, "k2")).toEqual({ granted: true });
        expect((await take(rates, "c", T0, 1, "k1")).granted).toBe(false);
      });
    });

    it("never grants more than the limit in a period to many concurrent callers", async () => {
      await withRates(async (rates) => {
        const answers = await Promise.all(
          Array.from({ length: 40 }, (_, index) => take(rates, `h${index}`, T0, 3)),
        );
        expect(answers.filter((answer) => answer.granted)).toHaveLength(3);
        const turns = answers.flatMap((answer) => (answer.granted ? [] : [answer.retryAt]));
        // Everyone in line is told a turn after the window, and the turns spread over the periods to come.
        expect(Math.min(...turns)).toBe(T0 + PERIOD);
        expect(Math.max(...turns)).toBe(T0 + 13 * PERIOD);
      });
    });
  });
}
