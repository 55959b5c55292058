import type { Redis } from "ioredis";
import {
  RATE_LINE_GRACE_MS,
  type RateAnswer,
  type RateLimitStore,
  type RateRequest,
  UNREPORTED_START_MS,
} from "../../ports/rate-limit-store.ts";
import { LuaScript } from "./connection.ts";

/**
 * KEYS: starts (zset holder → grant time), line (zset holder → arrival), line leases (zset holder → end of
 * its place), arrival counter. ARGV: holder, limit, periodMs, now, grace, unreported start. Returns { 1 } for a start,
 * { 0, retryAt } otherwise (see `turnOf` in ports/rate-limit-store.ts for the estimate).
 */
const TAKE = new LuaScript(`
local holder = ARGV[1]
local limit = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('ZREM', KEYS[2], gone)
  redis.call('ZREM', KEYS[3], gone)
end
if redis.call('ZSCORE', KEYS[1], holder) then return { 1 } end
if not redis.call('ZSCORE', KEYS[2], holder) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), holder)
end
local count = redis.call('ZCARD', KEYS[1])
local free = limit - count
local position = redis.call('ZRANK', KEYS[2], holder)
if position < free then
  redis.call('ZREM', KEYS[2], holder)
  redis.call('ZREM', KEYS[3], holder)
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[6]), holder)
  redis.call('PEXPIRE', KEYS[1], period + tonumber(ARGV[6]) * 2)
  return { 1 }
end
local retryAt = now + math.ceil(period / limit)
if count > 0 then
  local ahead = position - math.max(0, free)
  local index = ahead % count
  -- A start not reported yet is about to begin: estimate it as beginning now.
  local times = {}
  for _, score in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')) do
    if _ % 2 == 0 then table.insert(times, math.min(tonumber(score), now)) end
  end
  table.sort(times)
  local at = times[index + 1]
  retryAt = at + period * (1 + math.floor(ahead / count))
end
redis.call('ZADD', KEYS[3], retryAt + tonumber(ARGV[5]), holder)
return { 0, tostring(retryAt) }
`);

/** KEYS: starts. ARGV: holder, at. Records when a granted start's work began (a start still counted only). */
const STARTED = new LuaScript(`
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
return 1
`);

/** KEYS: starts, line, line leases. ARGV: holder. Gives up the holder's start and its place in line. */
const LEAVE = new LuaScript(`
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 1
`);

/**
 * Start rates in Redis, shared by every worker: each `take` is one Lua script (a sliding log of the last
 * period's starts and a line), so it is atomic across workers; times are the callers' clocks.
 */
export class RedisRateLimitStore implements RateLimitStore {
  constructor(
    private readonly client: Redis,
    private readonly prefix = "tsw:",
  ) {}

  async take({ key, limit, periodMs, holder, now }: RateRequest): Promise<RateAnswer> {
    const [granted, retryAt] = (await TAKE.run(this.client, this.keys(key), [
      holder,
      limit,
      periodMs,
      now,
      RATE_LINE_GRACE_MS,
      UNREPORTED_START_MS,
    ])) as [number, string?];
    return granted === 1 ? { granted: true } : { granted: false, retryAt: Number(retryAt) };
  }

  async started(key: string, holder: string, at: number): Promise<void> {
    await STARTED.run(this.client, this.keys(key).slice(0, 1), [holder, at]);
  }

  async leave(key: string, holder: string): Promise<void> {
    await LEAVE.run(this.client, this.keys(key).slice(0, 3), [holder]);
  }

  async inspect(
    key: string,
    periodMs: number,
    now: number,
  ): Promise<{ started: string[]; waiting: string[] }> {
    const [starts, line, leases] = this.keys(key) as [string, string, string];
    const started = await this.client.zrangebyscore(starts, `(${now - periodMs}`, "+inf");
    const live = new Set(await this.client.zrangebyscore(leases, `(${now}`, "+inf"));
    const waiting = (await this.client.zrange(line, 0, -1)).filter((holder) => live.has(holder));
    return { started, waiting };
  }

  private keys(key: string): string[] {
    // One hash tag per key keeps a limit's keys in one Redis Cluster slot.
    const base = `${this.prefix}rate:{${key}}`;
    return [`${base}:starts`, `${base}:line`, `${base}:line-leases`, `${base}:arrivals`];
  }
}
