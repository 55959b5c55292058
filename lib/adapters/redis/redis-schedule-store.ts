import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { ScheduleState, ScheduleStore } from "../../ports/schedule-store.ts";
import { LuaScript } from "./connection.ts";

/** KEYS: lock. ARGV: token. Deletes the lock only while this holder still has it. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** How long a worker may hold the schedules' lease; one that dies frees it after this long. */
const LEASE_MS = 30_000;

/**
 * Schedule state in Redis, shared by every worker with the same prefix: a hash `<prefix>schedules`
 * (name → state JSON), and a lease `<prefix>schedules:lock` (SET NX PX) so that one worker at a time
 * handles the due ticks: a tick fires once across workers (its run's idempotency key makes a second
 * start of it harmless anyway).
 */
export class RedisScheduleStore implements ScheduleStore {
  readonly #client: Redis;
  readonly #states: string;
  readonly #lock: string;

  constructor(client: Redis, prefix = "tsw:") {
    this.#client = client;
    this.#states = `${prefix}schedules`;
    this.#lock = `${prefix}schedules:lock`;
  }

  async get(name: string): Promise<ScheduleState | undefined> {
    const json = await this.#client.hget(this.#states, name);
    return json === null ? undefined : (JSON.parse(json) as ScheduleState);
  }

  async list(): Promise<ScheduleState[]> {
    const all = await this.#client.hgetall(this.#states);
    return Object.values(all).map((json) => JSON.parse(json) as ScheduleState);
  }

  async put(state: ScheduleState): Promise<void> {
    await this.#client.hset(this.#states, state.name, JSON.stringify(state));
  }

  async delete(name: string): Promise<void> {
    await this.#client.hdel(this.#states, name);
  }

  async exclusive(work: () => Promise<void>): Promise<void> {
    const token = randomUUID();
    const taken = await this.#client.set(this.#lock, token, "PX", LEASE_MS, "NX");
    if (taken !== "OK") return;
    try {
      await work();
    } finally {
      await RELEASE.run(this.#client, [this.#lock], [token]);
    }
  }
}
