import hashlru from "hashlru";

// hashlru is CommonJS whose types declare a default export: Node and bundlers give the function itself.
const createLru = hashlru as unknown as typeof hashlru.default;

/**
 * The count-bounded cache of tsworkflow's warm runs and lookups: hashlru's two generations (the least
 * recently used entries are dropped a generation at a time, so up to twice `maxSize` are held between
 * drops), in about 1 KB of a Lambda bundle. Keys are strings.
 */
export class LruMap<V> {
  private readonly entries: ReturnType<typeof createLru>;

  constructor(maxSize: number) {
    this.entries = createLru(Math.max(1, maxSize));
  }

  get(key: string): V | undefined {
    return this.entries.get(key) as V | undefined;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  set(key: string, value: V): void {
    this.entries.set(key, value);
  }

  delete(key: string): void {
    this.entries.remove(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
