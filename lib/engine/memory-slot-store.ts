import type { SlotAnswer, SlotRequest, SlotStore } from "../ports/slot-store.ts";

interface KeySlots {
  /** Holder → its token and lease end. */
  holding: Map<string, { token: string; expiresAt: number }>;
  /** Holder → its lease end; a Map keeps insertion order, which is the line's arrival order. */
  waiting: Map<string, number>;
}

/**
 * Slots in this process's memory, for the embedded runtime (memory and file backends, one process).
 * Each call runs to its end without awaiting, so it is atomic for the event loop.
 */
export class MemorySlotStore implements SlotStore {
  private readonly keys = new Map<string, KeySlots>();

  async acquire({ key, holder, token, limit, leaseMs, now }: SlotRequest): Promise<SlotAnswer> {
    const slots = this.live(key, now);
    const expiresAt = now + leaseMs;
    const held = slots.holding.get(holder);
    if (held) {
      if (held.token !== token) return "held";
      held.expiresAt = expiresAt;
      return "granted";
    }
    // A holder already in line keeps its place; a new one goes to the end.
    slots.waiting.set(holder, expiresAt);
    const position = [...slots.waiting.keys()].indexOf(holder);
    if (position >= limit - slots.holding.size) return "waiting";
    slots.waiting.delete(holder);
    slots.holding.set(holder, { token, expiresAt });
    return "granted";
  }

  async release(key: string, holder: string, token: string): Promise<void> {
    const slots = this.keys.get(key);
    if (!slots) return;
    if (slots.holding.get(holder)?.token === token) slots.holding.delete(holder);
    slots.waiting.delete(holder);
    if (slots.holding.size === 0 && slots.waiting.size === 0) this.keys.delete(key);
  }

  async inspect(key: string, now: number): Promise<{ holding: string[]; waiting: string[] }> {
    const slots = this.live(key, now);
    return { holding: [...slots.holding.keys()], waiting: [...slots.waiting.keys()] };
  }

  /** The key's slots with expired leases dropped. */
  private live(key: string, now: number): KeySlots {
    let slots = this.keys.get(key);
    if (!slots) {
      slots = { holding: new Map(), waiting: new Map() };
      this.keys.set(key, slots);
    }
    for (const [holder, lease] of slots.holding) if (lease.expiresAt <= now) slots.holding.delete(holder);
    for (const [holder, expiresAt] of slots.waiting) if (expiresAt <= now) slots.waiting.delete(holder);
    return slots;
  }
}
