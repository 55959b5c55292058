import type { Redis } from "ioredis";
import type { SlotAnswer, SlotRequest, SlotStore } from "../../ports/slot-store.ts";
import { LuaScript } from "./connection.ts";

/**
 * KEYS: holders (zset holder → lease end), tokens (hash holder → token), line (zset holder → arrival),
 * line leases (zset holder → lease end), arrival counter. ARGV: holder, token, limit, leaseMs, now.
 * Expired holders and waiters are dropped first, so a SIGKILLed worker's slots come back at lease end.
 */
const ACQUIRE = new LuaScript(`
local now = tonumber(ARGV[5])
local expiresAt = now + tonumber(ARGV[4])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('HDEL', KEYS[2], gone)
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  redis.call('ZREM', KEYS[3], gone)
  redis.call('ZREM', KEYS[4], gone)
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 2 end
  redis.call('ZADD', KEYS[1], expiresAt, ARGV[1])
  return 1
end
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[5]), ARGV[1])
end
redis.call('ZADD', KEYS[4], expiresAt, ARGV[1])
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
if redis.call('ZRANK', KEYS[3], ARGV[1]) < free then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZADD', KEYS[1], expiresAt, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
return 0
`);

/** Frees the holder's slot if its token holds it, and its place in line. */
const RELEASE = new LuaScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
`);

/**
 * Slots in Redis, shared by every worker: each acquire and release is one Lua script, so it is atomic
 * across workers; slots and places in line are leases on the caller's clock.
 */
export class RedisSlotStore implements SlotStore {
  constructor(
    private readonly client: Redis,
    private readonly prefix = "tsw:",
  ) {}

  async acquire({ key, holder, token, limit, leaseMs, now }: SlotRequest): Promise<SlotAnswer> {
    const answer = await ACQUIRE.run(this.client, this.keys(key), [holder, token, limit, leaseMs, now]);
    return answer === 1 ? "granted" : answer === 2 ? "held" : "waiting";
  }

  async release(key: string, holder: string, token: string): Promise<void> {
    await RELEASE.run(this.client, this.keys(key).slice(0, 4), [holder, token]);
  }

  async inspect(key: string, now: number): Promise<{ holding: string[]; waiting: string[] }> {
    const [holders, , line, lineLeases] = this.keys(key);
    const holding = await this.client.zrangebyscore(holders as string, `(${now}`, "+inf");
    const live = new Set(await this.client.zrangebyscore(lineLeases as string, `(${now}`, "+inf"));
    const waiting = (await this.client.zrange(line as string, 0, -1)).filter((holder) => live.has(holder));
    return { holding, waiting };
  }

  private keys(key: string): string[] {
    // One hash tag per key keeps a limit's keys in one Redis Cluster slot.
    const base = `${this.prefix}slots:{${key}}`;
    return [`${base}:holders`, `${base}:tokens`, `${base}:line`, `${base}:line-leases`, `${base}:arrivals`];
  }
}
