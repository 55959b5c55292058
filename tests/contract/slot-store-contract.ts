import { describe, expect, it } from "vitest";
import type { SlotStore } from "../../lib/ports/slot-store.ts";

/** Makes a fresh, empty slot store for each test. */
export interface SlotStoreHarness {
  create(): Promise<{ slots: SlotStore; close(): Promise<void> }>;
}

const T0 = Date.parse("2030-01-01T00:00:00.000Z");
const LEASE = 10_000;

/** What every `SlotStore` adapter must do; each adapter's test file calls it. */
export function describeSlotStoreContract(name: string, harness: SlotStoreHarness): void {
  describe(`${name} (SlotStore contract)`, () => {
    async function withSlots(body: (slots: SlotStore) => Promise<void>) {
      const { slots, close } = await harness.create();
      try {
        await body(slots);
      } finally {
        await close();
      }
    }
    const ask = (slots: SlotStore, holder: string, now = T0, limit = 2, key = "k") =>
      slots.acquire({ key, holder, token: `token-${holder}`, limit, leaseMs: LEASE, now });

    it("grants up to the limit and makes the others wait in arrival order", async () => {
      await withSlots(async (slots) => {
        expect(await ask(slots, "a")).toBe("granted");
        expect(await ask(slots, "b")).toBe("granted");
        expect(await ask(slots, "c")).toBe("waiting");
        expect(await ask(slots, "d")).toBe("waiting");
        expect(await slots.inspect("k", T0)).toEqual({ holding: ["a", "b"], waiting: ["c", "d"] });
        await slots.release("k", "a", "token-a");
        // d asks first, but c was in line before it.
        expect(await ask(slots, "d", T0 + 1)).toBe("waiting");
        expect(await ask(slots, "c", T0 + 1)).toBe("granted");
        expect(await slots.inspect("k", T0 + 1)).toEqual({ holding: ["b", "c"], waiting: ["d"] });
      });
    });

    it("renews a held slot for its token and refuses a second copy of the same holder", async () => {
      await withSlots(async (slots) => {
        expect(await ask(slots, "a")).toBe("granted");
        expect(await ask(slots, "a", T0 + LEASE - 1)).toBe("granted");
        expect(
          await slots.acquire({
            key: "k",
            holder: "a",
            token: "other",
            limit: 2,
            leaseMs: LEASE,
            now: T0 + 1,
          }),
        ).toBe("held");
        // Renewed at T0 + LEASE - 1, so still held past the first lease's end.
        expect((await slots.inspect("k", T0 + LEASE + 1)).holding).toEqual(["a"]);
      });
    });

    it("gives back the slot of a holder that is not heard of before its lease ends (a crashed worker)", async () => {
      await withSlots(async (slots) => {
        expect(await ask(slots, "a", T0, 1)).toBe("granted");
        expect(await ask(slots, "b", T0, 1)).toBe("waiting");
        expect(await ask(slots, "b", T0 + LEASE, 1)).toBe("granted");
        expect(await slots.inspect("k", T0 + LEASE)).toEqual({ holding: ["b"], waiting: [] });
      });
    });

    it("drops a waiter that stops asking, so the next in line is not held up", async () => {
      await withSlots(async (slots) => {
        expect(await ask(slots, "a", T0, 1)).toBe("granted");
        expect(await ask(slots, "gone", T0, 1)).toBe("waiting");
        expect(await ask(slots, "c", T0 + LEASE / 2, 1)).toBe("waiting");
        await slots.release("k", "a", "token-a");
        expect(await ask(slots, "c", T0 + LEASE + 1, 1)).toBe("granted");
      });
    });

    it("ignores a release with another token, and frees a waiter's place on release", async () => {
      await withSlots(async (slots) => {
        expect(await ask(slots, "a", T0, 1)).toBe("granted");
        expect(await ask(slots, "b", T0, 1)).toBe("waiting");
        await slots.release("k", "a", "not-a");
        expect((await slots.inspect("k", T0)).holding).toEqual(["a"]);
        await slots.release("k", "b", "token-b");
        expect(await slots.inspect("k", T0)).toEqual({ holding: ["a"], waiting: [] });
      });
    });

    it("keeps keys apart", async () => {
      await withSlots(async (slots) => {
        expect(await ask(slots, "a", T0, 1, "k1")).toBe("granted");
        expect(await ask(slots, "b", T0, 1, "k2")).toBe("granted");
        expect(await ask(slots, "c", T0, 1, "k1")).toBe("waiting");
      });
    });

    it("never grants more than the limit to many concurrent callers", async () => {
      await withSlots(async (slots) => {
        const granted = await Promise.all(
          Array.from({ length: 40 }, (_, index) => ask(slots, `h${index}`, T0, 3)),
        );
        expect(granted.filter((answer) => answer === "granted")).toHaveLength(3);
        expect((await slots.inspect("k", T0)).waiting).toHaveLength(37);
      });
    });
  });
}
