import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { LuaScript } from "./connection.ts";

/** Deletes the lock only if it still holds our token, so a lock that expired and was taken by another worker is left alone. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * Takes the lock if it is free. A lock that already holds our token is ours too: this command sent again by
 * ioredis after a dropped connection lost its reply (else the run would wait for our own lock to expire).
 */
const ACQUIRE = new LuaScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
`);

/** Extends the lock only if it still holds our token. */
const EXTEND = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);

/** A held lock; `release()` is safe to call more than once. */
export interface HeldLock {
  readonly token: string;
  release(): Promise<void>;
}

/**
 * One holder per run across all workers: `SET key token NX PX ttl` (in a script, see `ACQUIRE`), renewed
 * while held, released by a compare-and-delete script. The lock keeps activations of a run from
 * overlapping; correctness still rests on the store's conditional commit (a holder paused past its TTL can
 * only lose a version race).
 */
export class RunLocks {
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {}

  key(runId: string): string {
    return `${this.prefix}lock:${runId}`;
  }

  /** The lock, or undefined when another worker holds it. */
  async acquire(runId: string): Promise<HeldLock | undefined> {
    const key = this.key(runId);
    const token = randomUUID();
    if ((await ACQUIRE.run(this.client, [key], [token, this.ttlMs])) !== 1) return undefined;
    const renew = setInterval(
      () => {
        EXTEND.run(this.client, [key], [token, this.ttlMs]).catch(() => {
          // A failed renewal only matters if the activation outlives the TTL; the commit stays conditional.
        });
      },
      Math.max(50, Math.floor(this.ttlMs / 3)),
    );
    renew.unref();
    let released = false;
    return {
      token,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renew);
        try {
          await RELEASE.run(this.client, [key], [token]);
        } catch {
          // The lock expires on its own after ttlMs.
        }
      },
    };
  }
}
