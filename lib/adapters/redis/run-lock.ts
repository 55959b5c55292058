import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { StepTask } from "../../ports/task-queue.ts";
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

/** The attempt a claim names (see `RunLocks.claim`). */
export type StepAttempt = Pick<StepTask, "runId" | "stepId" | "attempt">;

/**
 * One holder per run across all workers: `SET key token NX PX ttl` (in a script, see `ACQUIRE`), renewed
 * while held, released by a compare-and-delete script. The lock keeps activations of a run from
 * overlapping; correctness still rests on the store's conditional commit (a holder paused past its TTL can
 * only lose a version race).
 *
 * A worker that lets go of a run's lock while it runs one of the run's steps inline claims that attempt
 * (`claim`), renewed and released like a lock: a copy of the attempt's task, which another activation of
 * the run may send meanwhile (a redelivery, a sweep), waits while the claim lives (`claimedFor`).
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

  /** The key of an attempt's claim. */
  claimKey({ runId, stepId, attempt }: StepAttempt): string {
    return `${this.prefix}inline:${runId}|${encodeURIComponent(stepId)}|${attempt}`;
  }

  /** The lock, or undefined when another worker holds it. */
  async acquire(runId: string): Promise<HeldLock | undefined> {
    const key = this.key(runId);
    const token = randomUUID();
    if ((await ACQUIRE.run(this.client, [key], [token, this.ttlMs])) !== 1) return undefined;
    return this.held(key, token);
  }

  /**
   * Claims an attempt that this worker runs inline, at once: the claim's `SET` is sent before any command
   * sent after this call on the same client (a lock let go right after it is let go once the claim exists).
   */
  claim(attempt: StepAttempt): HeldLock {
    const key = this.claimKey(attempt);
    const token = randomUUID();
    const set = this.client.set(key, token, "PX", this.ttlMs).then(
      () => undefined,
      () => {
        // Without the claim, a copy of the attempt's task may run while this one does: at least once.
      },
    );
    return this.held(key, token, set);
  }

  /** How long an attempt stays claimed (ms), 0 when it is not (its holder let it go, or died a TTL ago). */
  async claimedFor(attempt: StepAttempt): Promise<number> {
    return Math.max(0, await this.client.pttl(this.claimKey(attempt)));
  }

  private held(key: string, token: string, taken?: Promise<void>): HeldLock {
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
          if (taken) await taken;
          await RELEASE.run(this.client, [key], [token]);
        } catch {
          // The lock expires on its own after ttlMs.
        }
      },
    };
  }
}
