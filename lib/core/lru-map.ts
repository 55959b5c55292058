/**
 * The count-bounded cache of tsworkflow's warm runs and lookups, in two generations (hashlru's scheme): new
 * entries go to the current one; when it has taken `maxSize` of them it becomes the previous one, and the
 * previous one is dropped. An entry read from the previous generation moves to the current one, so the
 * least recently used entries are dropped a generation at a time, and up to twice `maxSize` are held
 * between drops. Keys are strings. An ES module of its own: a CommonJS package costs a Lambda bundle
 * esbuild's interop helpers on top of its code.
 */
export class LruMap<V> {
  private readonly maxSize: number;
  /** Entries the current generation has taken since it began (deletes do not give any back). */
  private taken = 0;
  private current = new Map<string, V>();
  private previous = new Map<string, V>();

  constructor(maxSize: number) {
    this.maxSize = Math.max(1, maxSize);
    if (Number.isNaN(this.maxSize)) throw new RangeError(`An LruMap needs a size >= 1, got ${maxSize}.`);
  }

  get(key: string): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old !== undefined) this.take(key, old);
    return old;
  }

  has(key: string): boolean {
    return this.current.has(key) || this.previous.has(key);
  }

  set(key: string, value: V): void {
    if (this.current.has(key)) this.current.set(key, value);
    else this.take(key, value);
  }

  delete(key: string): void {
    this.current.delete(key);
    this.previous.delete(key);
  }

  clear(): void {
    this.current = new Map();
    this.previous = new Map();
  }

  /** Adds an entry to the current generation, which becomes the previous one once it has taken `maxSize`. */
  private take(key: string, value: V): void {
    this.current.set(key, value);
    this.taken += 1;
    if (this.taken >= this.maxSize) {
      this.taken = 0;
      this.previous = this.current;
      this.current = new Map();
    }
  }
}
