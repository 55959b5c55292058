import { describe, expect, it } from "vitest";
import { LruMap } from "../../lib/core/lru-map.ts";

describe("LruMap", () => {
  it("keeps recently used entries and drops the least recently used a generation at a time", () => {
    // Prepare
    const cache = new LruMap<number>(2);
    // Act
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    const a = cache.get("a"); // used again: kept over "b"
    cache.set("d", 4);
    // Assess
    expect(a).toBe(1);
    expect([cache.get("a"), cache.get("d")]).toEqual([1, 4]);
    expect(cache.has("b")).toBe(false);
  });

  it("holds at most twice its size, forgets deleted keys and clears", () => {
    // Prepare
    const cache = new LruMap<number>(10);
    // Act
    for (let index = 0; index < 1000; index += 1) cache.set(`k${index}`, index);
    const held = Array.from({ length: 1000 }, (_, index) => cache.has(`k${index}`)).filter(Boolean).length;
    cache.delete("k999");
    const deleted = cache.get("k999");
    cache.clear();
    // Assess
    expect(held).toBeGreaterThanOrEqual(10);
    expect(held).toBeLessThanOrEqual(20);
    expect(deleted).toBeUndefined();
    expect(cache.has("k998")).toBe(false);
  });
});
