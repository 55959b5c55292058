import type { Redis } from "ioredis";
import {
  InvalidEventError,
  type SerializedError,
  StorageClosedError,
  VersionConflictError,
} from "../../core/errors.ts";
import { acceptAppend, parseEvent, resumeAtOf, type WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import { LruMap } from "../../core/lru-map.ts";
import { MAX_PAYLOAD_BYTES } from "../../core/serialization.ts";
import { type RunTags, tagKey } from "../../core/tags.ts";
import {
  type CommitResult,
  type CreateRunResult,
  type EventStore,
  FINISHED_STATUSES,
  type NewRun,
  RUN_STATUSES,
  type RunPage,
  type RunPatch,
  type RunQuery,
  type RunRecord,
  type RunStatus,
  type StepOutcome,
  type StoreLimits,
} from "../../ports/event-store.ts";
import { inboxIds } from "../../ports/inbox.ts";
import { decodeRunCursor, encodeRunCursor, pageLimit } from "../../ports/run-cursor.ts";
import type { RunLease } from "../../ports/task-queue.ts";
import { closeRedis, LuaScript, mapRedisError, openRedis, type RedisConnection } from "./connection.ts";

/** Options of {@link RedisStorage}. */
export interface RedisStorageOptions {
  /** A connected ioredis client (you close it) or a `redis://` URL (the storage opens and closes its own client). */
  redis: Redis | string;
  /**
   * Prepended to every key, so several applications (or test runs) can share one Redis database.
   * @default "tsw:"
   */
  prefix?: string;
  /**
   * The largest payload (step input or result, workflow input or result, event payload, log data), in
   * UTF-8 bytes of JSON: declared as the storage's `limits`, and enforced by the engine before anything
   * is written (a larger value fails with `PayloadTooLargeError`, see the README's limits section).
   * @default MAX_PAYLOAD_BYTES (255 KB)
   */
  maxPayloadBytes?: number;
  /**
   * How many log entries (across runs, most recently read runs kept) this storage remembers after
   * validating them, so that reading a log again fetches and validates only the entries appended since.
   * A run's activations hop between workers, each of which reads its whole log when it has not seen the
   * latest version: without this, a long run costs time quadratic in its length. `0` turns it off.
   * @default 200000
   */
  eventCacheSize?: number;
}

const STATUSES: ReadonlySet<string> = new Set(RUN_STATUSES);
/** Events that consume a stored outcome: once one is in the log, the outcome is no longer pending. */
const OUTCOME_EVENTS: ReadonlySet<string> = new Set(["step_completed", "step_failed", "step_retrying"]);
/** The statuses a child run hands its parent (a `continued` child's continuation does it instead). */
const TELLS_PARENT: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);
/**
 * Lua: `appliesNoMore[status]`, true for a finished run that will never apply an outcome: every finished status
 * but `failed`, since `retryRun` goes on with a failed run, applying what waits for it (the outcome of a step
 * that still ran when another failed the run, an event it had not waited for yet).
 */
const APPLIES_NO_MORE = `local appliesNoMore = {${[...FINISHED_STATUSES]
  .filter((status) => status !== "failed")
  .map((status) => `${status} = true`)
  .join(", ")}}`;

/*
 * Keys (P = prefix):
 *   P run:<runId>                      hash: the run document (JSON fields: input, result, error)
 *   P events:<runId>                   list: the log, one JSON event per entry; its length is the version
 *   P outcomes:<runId>                 hash: "<attempt>:<stepId>" → outcome JSON (HSETNX: first write wins, forever)
 *   P pending-outcomes:<runId>         list: outcome fields in the order recorded, not yet consumed by a commit;
 *                                      none for a run that will never apply them (see APPLIES_NO_MORE)
 *   P idem:<key>                       string: the run id holding an idempotency key
 *   P idx:all                          sorted sets of run ids scored by createdAt (epoch ms), for listing
 *   P idx:status:<status>
 *   P idx:wf:<workflowName>
 *   P idx:wf-status:<status>:<workflowName>
 *   P idx:tag:<key>=<value>            sorted set of the runs that carry the tag, scored by createdAt
 *   P idx:children-done                sorted set of finished child runs whose parent has not applied their
 *                                      result yet, scored by their finish (epoch ms), for the sweeper
 *   P idx:inbox                        sorted set of the runs with outcomes stored and not yet applied, scored by
 *                                      when the first of them was stored (or the sweeper last looked at the run)
 * Scripts build index keys from the prefix, so all keys must live on one Redis node (no Cluster).
 */

/**
 * KEYS: run, events, idem, idx:all, idx:status, idx:wf, idx:wf-status, idx:tag:… (one per tag).
 * ARGV: hasKey, runId, score, event, field/value…
 * A run that already exists with this id and first event (or a key held by this run id) is this creation sent
 * again after a lost reply: created, as the first time.
 */
const CREATE_RUN = new LuaScript(`
if ARGV[1] == '1' then
  local holder = redis.call('GET', KEYS[3])
  if holder == ARGV[2] then return {1} end
  if holder then return {0, holder} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('LINDEX', KEYS[2], 0) == ARGV[4] then return {1} end
  return {-1}
end
if ARGV[1] == '1' then redis.call('SET', KEYS[3], ARGV[2]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('RPUSH', KEYS[2], ARGV[4])
for i = 4, #KEYS do redis.call('ZADD', KEYS[i], ARGV[3], ARGV[2]) end
return {1}
`);

/*
 * The commit, as a Lua function of where its keys and arguments start in KEYS and ARGV (after k and a others):
 * keys: run, events, pending-outcomes, idx:all.
 * arguments: prefix, runId, expectedVersion, newStatus, guard ("1": refuse if an outcome waits that these events do
 *       not consume), eventCount, events…, setCount, field/value…, delCount, fields…, consumedCount, outcome
 *       fields…, tagCount (-1: tags unchanged), "key=value"…, finishedAt (epoch ms when the commit finishes the
 *       run and tells a parent, else 0), childCount, child run ids whose results these events apply…
 * Returns { new version, outcomes still pending }, or -1 when the log no longer has expectedVersion events (or the
 * run is missing, or the guard refused). A commit whose events are already in the log where it would put them is
 * this commit sent again (ioredis re-sends a command whose reply a dropped connection lost): done, not a conflict,
 * or no one would perform its effects (send its steps, arm its timers).
 */
const COMMIT_FUNCTION = `
${APPLIES_NO_MORE}
local function commit(k, a)
  local prefix, runId = ARGV[a + 1], ARGV[a + 2]
  local expected = tonumber(ARGV[a + 3])
  if redis.call('EXISTS', KEYS[k + 1]) == 0 then return -1 end
  local eventsAt = 6
  local n = tonumber(ARGV[a + eventsAt])
  if redis.call('LLEN', KEYS[k + 2]) ~= expected then
    if n == 0 then return -1 end
    local stored = redis.call('LRANGE', KEYS[k + 2], expected, expected + n - 1)
    for j = 1, n do
      if stored[j] ~= ARGV[a + eventsAt + j] then return -1 end
    end
    return {expected + n, redis.call('LLEN', KEYS[k + 3])}
  end
  local setAt = eventsAt + tonumber(ARGV[a + eventsAt]) + 1
  local delAt = setAt + tonumber(ARGV[a + setAt]) + 1
  local consumedAt = delAt + tonumber(ARGV[a + delAt]) + 1
  local tagsAt = consumedAt + tonumber(ARGV[a + consumedAt]) + 1
  if ARGV[a + 5] == '1' and redis.call('LLEN', KEYS[k + 3]) > 0 then
    local consumed = {}
    for j = consumedAt + 1, tagsAt - 1 do consumed[ARGV[a + j]] = true end
    for _, field in ipairs(redis.call('LRANGE', KEYS[k + 3], 0, -1)) do
      if not consumed[field] then return -1 end
    end
  end
  if n > 0 then redis.call('RPUSH', KEYS[k + 2], unpack(ARGV, a + eventsAt + 1, a + eventsAt + n)) end
  local version = expected + n
  local old = redis.call('HGET', KEYS[k + 1], 'status')
  local newStatus = ARGV[a + 4]
  redis.call('HSET', KEYS[k + 1], 'status', newStatus, 'version', version)
  n = tonumber(ARGV[a + setAt])
  if n > 0 then redis.call('HSET', KEYS[k + 1], unpack(ARGV, a + setAt + 1, a + setAt + n)) end
  n = tonumber(ARGV[a + delAt])
  if n > 0 then redis.call('HDEL', KEYS[k + 1], unpack(ARGV, a + delAt + 1, a + delAt + n)) end
  for j = consumedAt + 1, tagsAt - 1 do redis.call('LREM', KEYS[k + 3], 0, ARGV[a + j]) end
  if appliesNoMore[newStatus] then redis.call('DEL', KEYS[k + 3]) end
  local waiting = redis.call('LLEN', KEYS[k + 3])
  if waiting == 0 then redis.call('ZREM', prefix .. 'idx:inbox', runId) end
  n = tonumber(ARGV[a + tagsAt])
  if n >= 0 then
    local score = redis.call('ZSCORE', KEYS[k + 4], runId)
    local previous = redis.call('HGET', KEYS[k + 1], 'tagKeys')
    if previous then
      for tag in string.gmatch(previous, '[^\\n]+') do redis.call('ZREM', prefix .. 'idx:tag:' .. tag, runId) end
    end
    for j = tagsAt + 1, tagsAt + n do redis.call('ZADD', prefix .. 'idx:tag:' .. ARGV[a + j], score, runId) end
    redis.call('HSET', KEYS[k + 1], 'tagKeys', table.concat({unpack(ARGV, a + tagsAt + 1, a + tagsAt + n)}, '\\n'))
  end
  local finishedAt = tagsAt + math.max(n, 0) + 1
  if ARGV[a + finishedAt] ~= '0' and old ~= newStatus and redis.call('HEXISTS', KEYS[k + 1], 'parentRunId') == 1 then
    redis.call('ZADD', prefix .. 'idx:children-done', ARGV[a + finishedAt], runId)
  end
  for j = finishedAt + 2, finishedAt + 1 + tonumber(ARGV[a + finishedAt + 1]) do
    redis.call('ZREM', prefix .. 'idx:children-done', ARGV[a + j])
  end
  if old ~= newStatus then
    local wf = redis.call('HGET', KEYS[k + 1], 'workflowName')
    local score = redis.call('ZSCORE', KEYS[k + 4], runId)
    redis.call('ZREM', prefix .. 'idx:status:' .. old, runId)
    redis.call('ZREM', prefix .. 'idx:wf-status:' .. old .. ':' .. wf, runId)
    redis.call('ZADD', prefix .. 'idx:status:' .. newStatus, score, runId)
    redis.call('ZADD', prefix .. 'idx:wf-status:' .. newStatus .. ':' .. wf, score, runId)
  end
  return {version, waiting}
end
`;
const COMMIT = new LuaScript(`${COMMIT_FUNCTION}
return commit(0, 0)
`);

/**
 * Several commits in one call, each as COMMIT and independent of the others. KEYS: COMMIT's four keys of each
 * commit, in order. ARGV: for each commit, how many arguments it has, then its COMMIT arguments. Returns each
 * commit's reply.
 */
const COMMIT_MANY = new LuaScript(`${COMMIT_FUNCTION}
local replies, at = {}, 1
for c = 1, #KEYS / 4 do
  replies[c] = commit(c * 4 - 4, at)
  at = at + tonumber(ARGV[at]) + 1
end
return replies
`);

/**
 * KEYS: outcomes, pending-outcomes, idx:inbox, run. ARGV: field, outcome JSON, runId, now (epoch ms). Stores
 * nothing for a run that is not there (deleted), which would leave keys of no run; for a run that will never
 * apply it (completed, cancelled), stores it (a step's job delivered again finds it and runs nothing) but lists
 * it nowhere as waiting.
 */
const PUT_OUTCOME = new LuaScript(`
${APPLIES_NO_MORE}
local status = redis.call('HGET', KEYS[4], 'status')
if not status or redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if appliesNoMore[status] then return 1 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[3])
return 1
`);

/**
 * KEYS: idx:inbox. ARGV: prefix, before (epoch ms), limit, now, the finished statuses…. Of the runs listed before `before`: a run
 * finished, gone, or with nothing waiting any more is taken off; the others are listed again from `now`, and
 * those suspended with no wake-up time (waiting for an event, a child, a cancellation) are returned. The
 * others have a wake-up time or move on their own: the stale check covers them.
 */
const UNAPPLIED_OUTCOMES = new LuaScript(`
local found, finished = {}, {}
for i = 5, #ARGV do finished[ARGV[i]] = true end
for _, runId in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local run = ARGV[1] .. 'run:' .. runId
  local status = redis.call('HGET', run, 'status')
  if status == false or finished[status] or redis.call('LLEN', ARGV[1] .. 'pending-outcomes:' .. runId) == 0 then
    redis.call('ZREM', KEYS[1], runId)
  else
    redis.call('ZADD', KEYS[1], ARGV[4], runId)
    if status == 'suspended' and redis.call('HEXISTS', run, 'resumeAt') == 0 then found[#found + 1] = runId end
  end
end
return found
`);

/** Lua: `before(a, b)` in byte order, as ZREVRANGE sorts members (Lua's `<` follows the server's locale). */
const BYTE_ORDER = `
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
`;

/** KEYS: index. ARGV: limit, prefix. Reads ids and documents in one step so a listing is a consistent snapshot. */
/**
 * KEYS: index. ARGV: how many, prefix[, cursor score, cursor run id]. Newest first (ZREVRANGE: score, then
 * member, descending); after a cursor, the members that sort after (score, id), skipping its ties.
 */
const LIST_RUNS = new LuaScript(`${BYTE_ORDER}
local want = tonumber(ARGV[1])
local ids = {}
if ARGV[3] == nil then
  ids = redis.call('ZREVRANGE', KEYS[1], 0, want - 1)
else
  local score, after, offset = tonumber(ARGV[3]), ARGV[4], 0
  while #ids < want do
    local batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], score, '-inf', 'WITHSCORES', 'LIMIT', offset, want)
    if #batch == 0 then break end
    for i = 1, #batch, 2 do
      if tonumber(batch[i + 1]) < score or before(batch[i], after) then
        ids[#ids + 1] = batch[i]
        if #ids == want then break end
      end
    end
    offset = offset + #batch / 2
  end
end
local out = {}
for i, id in ipairs(ids) do out[i] = redis.call('HGETALL', ARGV[2] .. 'run:' .. id) end
return out
`);

/**
 * KEYS: idx:tag:… of each wanted tag. ARGV: how many, prefix, status or "", workflow or "", cursor score or "",
 * cursor run id or "". Walks the tag with the fewest runs newest first and keeps the runs that also carry the
 * other tags and match the status and workflow.
 */
const LIST_RUNS_BY_TAGS = new LuaScript(`${BYTE_ORDER}
local want, prefix, status, wf = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local score, after = ARGV[5] ~= '' and tonumber(ARGV[5]) or nil, ARGV[6]
local smallest, size = KEYS[1], redis.call('ZCARD', KEYS[1])
for i = 2, #KEYS do
  local n = redis.call('ZCARD', KEYS[i])
  if n < size then smallest, size = KEYS[i], n end
end
local out, offset = {}, 0
while #out < want do
  local batch = redis.call('ZREVRANGEBYSCORE', smallest, score or '+inf', '-inf', 'WITHSCORES', 'LIMIT', offset, 100)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local id, s = batch[i], tonumber(batch[i + 1])
    if score == nil or s < score or before(id, after) then
      local keep = true
      for k = 1, #KEYS do
        if KEYS[k] ~= smallest and not redis.call('ZSCORE', KEYS[k], id) then keep = false break end
      end
      local run = prefix .. 'run:' .. id
      if keep and status ~= '' and redis.call('HGET', run, 'status') ~= status then keep = false end
      if keep and wf ~= '' and redis.call('HGET', run, 'workflowName') ~= wf then keep = false end
      if keep then
        out[#out + 1] = redis.call('HGETALL', run)
        if #out == want then break end
      end
    end
  end
  offset = offset + #batch / 2
end
return out
`);

/** KEYS: outcomes, pending-outcomes. */
const LIST_OUTCOMES = new LuaScript(`
local fields = redis.call('LRANGE', KEYS[2], 0, -1)
if #fields == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(fields))
`);

/**
 * KEYS: run, events, outcomes, pending-outcomes. ARGV: the log index to read from. Returns { run document as
 * field/value…, log entries from there, waiting outcomes (as LIST_OUTCOMES) }: what an activation reads first.
 */
const READ_RUN = new LuaScript(`
local outcomes = {}
local fields = redis.call('LRANGE', KEYS[4], 0, -1)
if #fields > 0 then outcomes = redis.call('HMGET', KEYS[3], unpack(fields)) end
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], tonumber(ARGV[1]), -1), outcomes}
`);

const outcomeField = (stepId: string, attempt: number) => `${attempt}:${stepId}`;

/** The stored outcome an event applies, if any: a step's attempt, or what came from outside (attempt 1). */
function consumedOutcome(event: WorkflowEvent): string[] {
  if (OUTCOME_EVENTS.has(event.type) && "stepId" in event) return [outcomeField(event.stepId, event.attempt)];
  if (event.type === "hook_received") return [outcomeField(event.signalId, 1)];
  if (event.type === "cancel_requested") return [outcomeField(inboxIds.cancel, 1)];
  if (event.type === "child_completed" || event.type === "child_failed")
    return [outcomeField(inboxIds.child(event.childId), 1)];
  return [];
}

/** COMMIT's reply: -1, or { new version, outcomes still pending }. */
type CommitReply = -1 | [number, number];

/** A commit waiting for the end of this turn of the event loop (see `RedisStorage.sendCommit`). */
interface QueuedCommit {
  keys: string[];
  args: (string | number)[];
  resolve(reply: CommitReply): void;
  reject(error: unknown): void;
}

/** At most this many commits go in one script call (a larger batch takes several). */
const MAX_COMMITS_PER_CALL = 100;

/** What the first `getRun` of an activation read ahead for its `getEvents` (from a log index) and `listOutcomes`. */
interface ReadAhead {
  from: number;
  entries?: string[];
  outcomes?: (string | null)[];
}

/**
 * An {@link EventStore} on Redis (ioredis): each run's log is a list, each commit one Lua script that
 * appends only if the log still has `expectedVersion` events, so two workers racing on a run never both
 * append. Works with one Redis server (or a primary with replicas); Redis Cluster is not supported.
 * @example
 * import { RedisStorage } from "tsworkflow/redis";
 * const storage = new RedisStorage({ redis: "redis://127.0.0.1:6379", prefix: "myapp:" });
 */
export class RedisStorage implements EventStore {
  readonly prefix: string;
  private readonly connection: RedisConnection;
  /** What the engine lets through to this storage (see `RedisStorageOptions.maxPayloadBytes`). */
  readonly limits: StoreLimits;
  private readonly eventCacheSize: number;
  /**
   * Per run, a prefix of its log (raw JSON entries) already validated and canonical: parsing one again
   * gives what `parseEvent` would. Logs are append-only, so a prefix stays valid; the last remembered entry
   * is compared with Redis on each read, and any difference reloads the whole log.
   */
  private readonly logCache = new Map<string, string[]>();
  private cachedEvents = 0;
  /**
   * Per run, where it is in the cycle of an activation's inline steps (see `activation`): "quiet" (this storage's
   * last commit saw no outcome waiting), "list" (the lease was taken back after an inline step: the next listing
   * answers none), "commit" (the next commit is refused if an outcome waits that it does not consume).
   */
  private readonly inlineSteps = new LruMap<"quiet" | "list" | "commit">(10_000);
  /** Commits made in this turn of the event loop, sent together at its end (see `sendCommit`). */
  private commits: QueuedCommit[] = [];
  /** Where the next `staleRuns` goes on in each status index (a rank), so that every run is looked at in turn. */
  private readonly staleScanFrom = new Map<RunStatus, number>();
  /** Runs whose activation started here and has not read the run yet: the next `getRun` reads ahead. */
  private readonly readsAhead = new Set<string>();
  /** What a `getRun` read ahead, until its activation's `getEvents` and `listOutcomes` take it or it ends. */
  private readonly readAhead = new Map<string, ReadAhead>();
  /** Set when `close()` closed the connection this storage opened: no command is sent from then on. */
  private connectionClosed = false;

  /** @throws ConfigurationError when `redis` is a string that is not a redis:// URL */
  constructor(options: RedisStorageOptions) {
    this.prefix = options.prefix ?? "tsw:";
    this.limits = { maxPayloadBytes: options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES };
    this.eventCacheSize = options.eventCacheSize ?? 200_000;
    this.connection = openRedis(options.redis);
  }

  /** The ioredis client this storage uses. */
  get client(): Redis {
    return this.connection.client;
  }

  async createRun({ run, startedEvent }: NewRun): Promise<CreateRunResult> {
    assertRunId(run.runId);
    const event = JSON.stringify(acceptAppend(run.runId, 0, [startedEvent])[0]);
    const key = run.idempotencyKey;
    const fields = runFields(run);
    // A child run: its finish is indexed for the sweeper (see `finishedChildren`).
    if (startedEvent.type === "workflow_started" && startedEvent.parent)
      fields.push("parentRunId", startedEvent.parent.runId);
    const reply = (await this.call(() =>
      CREATE_RUN.run(
        this.client,
        [
          this.key("run", run.runId),
          this.key("events", run.runId),
          key === undefined ? this.key("run", run.runId) : this.key("idem", key),
          this.key("idx:all"),
          this.key("idx:status", run.status),
          this.key("idx:wf", run.workflowName),
          this.key("idx:wf-status", `${run.status}:${run.workflowName}`),
          ...tagKeys(run.tags).map((tag) => this.key("idx:tag", tag)),
        ],
        [key === undefined ? "0" : "1", run.runId, createdScore(run), event, ...fields],
      ),
    )) as [number, string?];
    if (reply[0] === 1) return { created: true, run: structuredClone(run) };
    if (reply[0] === -1) throw new VersionConflictError(run.runId, 0);
    const holder = reply[1] as string;
    const existing = await this.getRun(holder);
    if (!existing) {
      throw new InvalidEventError(
        `Idempotency key ${JSON.stringify(key)} points at run ${holder}, whose document is missing from Redis. Delete the key ${this.key("idem", key as string)} or restore the run.`,
      );
    }
    return { created: false, run: existing };
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    assertRunId(runId);
    if (this.readsAhead.delete(runId)) return this.readRun(runId);
    const hash = await this.call(() => this.client.hgetall(this.key("run", runId)));
    return Object.keys(hash).length === 0 ? undefined : this.toRecord(runId, hash);
  }

  /** `getRun`, reading in the same round trip what its activation reads next: the new log entries, the waiting outcomes. */
  private async readRun(runId: string): Promise<RunRecord | undefined> {
    const from = Math.max(0, (this.logCache.get(runId)?.length ?? 0) - 1);
    const [fields, entries, outcomes] = (await this.call(() =>
      READ_RUN.run(
        this.client,
        [
          this.key("run", runId),
          this.key("events", runId),
          this.key("outcomes", runId),
          this.key("pending-outcomes", runId),
        ],
        [from],
      ),
    )) as [string[], string[], (string | null)[]];
    if (fields.length === 0) return undefined;
    this.readAhead.set(runId, { from, entries, outcomes });
    const hash: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) hash[fields[i] as string] = fields[i + 1] as string;
    return this.toRecord(runId, hash);
  }

  /** Takes what the activation's `getRun` read ahead, once. */
  private takeAhead<K extends "entries" | "outcomes">(runId: string, what: K): ReadAhead[K] {
    const ahead = this.readAhead.get(runId);
    if (!ahead) return undefined;
    const taken = ahead[what];
    ahead[what] = undefined;
    if (!ahead.entries && !ahead.outcomes) this.readAhead.delete(runId);
    return taken;
  }

  async listRuns(query: RunQuery = {}): Promise<RunPage> {
    const limit = pageLimit(query);
    const after = query.cursor === undefined ? undefined : decodeRunCursor(query.cursor);
    if (limit === 0) return { runs: [] };
    const wanted = tagKeys(query.tags);
    // One more than asked for says whether a next page exists.
    const rows =
      wanted.length > 0
        ? ((await this.call(() =>
            LIST_RUNS_BY_TAGS.run(
              this.client,
              wanted.map((tag) => this.key("idx:tag", tag)),
              [
                limit + 1,
                this.prefix,
                query.status ?? "",
                query.workflowName ?? "",
                after ? Date.parse(after.createdAt) : "",
                after?.runId ?? "",
              ],
            ),
          )) as string[][])
        : await this.listByIndex(query, limit, after);
    const runs: RunRecord[] = [];
    for (const row of rows) {
      const hash: Record<string, string> = {};
      for (let i = 0; i + 1 < row.length; i += 2) hash[row[i] as string] = row[i + 1] as string;
      if (hash.runId) runs.push(this.toRecord(hash.runId, hash));
    }
    if (rows.length <= limit) return { runs };
    const page = runs.slice(0, limit);
    const last = page[page.length - 1];
    return last ? { runs: page, nextCursor: encodeRunCursor(last) } : { runs: page };
  }

  /** Rows of the index that the status and workflow of `query` name. */
  private async listByIndex(
    query: RunQuery,
    limit: number,
    after: { createdAt: string; runId: string } | undefined,
  ): Promise<string[][]> {
    const index =
      query.status && query.workflowName
        ? this.key("idx:wf-status", `${query.status}:${query.workflowName}`)
        : query.status
          ? this.key("idx:status", query.status)
          : query.workflowName
            ? this.key("idx:wf", query.workflowName)
            : this.key("idx:all");
    const args: (string | number)[] = [limit + 1, this.prefix];
    if (after) args.push(Date.parse(after.createdAt), after.runId);
    return (await this.call(() => LIST_RUNS.run(this.client, [index], args))) as string[][];
  }

  async getEvents(runId: string): Promise<WorkflowEvent[]> {
    assertRunId(runId);
    const key = this.key("events", runId);
    const cached = this.logCache.get(runId);
    // Only the entries after the remembered prefix, starting with its last one to check it is the same log.
    const from = Math.max(0, (cached?.length ?? 0) - 1);
    const ahead = this.readAhead.get(runId)?.from === from ? this.takeAhead(runId, "entries") : undefined;
    const tail = ahead ?? (await this.call(() => this.client.lrange(key, from, -1)));
    let raw: string[] | undefined;
    let known = 0;
    if (!cached || cached.length === 0) raw = tail;
    else if (tail[0] === cached[cached.length - 1]) {
      known = cached.length;
      raw = cached.concat(tail.slice(1));
    }
    raw ??= await this.call(() => this.client.lrange(key, 0, -1));
    const events: WorkflowEvent[] = [];
    let canonical = known;
    for (let index = 0; index < raw.length; index += 1) {
      const where = `run ${runId} (event ${index + 1})`;
      const json = raw[index] as string;
      if (index < known) {
        events.push(parseJson(json, where) as WorkflowEvent);
        continue;
      }
      const event = parseEvent(parseJson(json, where), where);
      events.push(event);
      if (canonical === index && JSON.stringify(event) === json) canonical += 1;
    }
    this.rememberLog(runId, canonical === raw.length ? raw : raw.slice(0, canonical));
    return events;
  }

  async commit(
    runId: string,
    expectedVersion: number,
    events: readonly WorkflowEvent[],
    patch: RunPatch,
  ): Promise<CommitResult> {
    assertRunId(runId);
    if (!STATUSES.has(patch.status))
      throw new InvalidEventError(
        `Cannot commit run ${runId} with unknown status ${JSON.stringify(patch.status)}.`,
      );
    const serialized = acceptAppend(runId, expectedVersion, events).map((event) => JSON.stringify(event));
    const set: string[] = ["updatedAt", patch.updatedAt];
    const del: string[] = [];
    // When a suspended run should wake up (a sleep, a wait's timeout), for the sweeper to find it if it does not.
    const resumeAt = patch.status === "suspended" ? resumeAtOf(events) : undefined;
    if (resumeAt === undefined) del.push("resumeAt");
    else set.push("resumeAt", String(resumeAt));
    if (patch.tags) set.push("tags", JSON.stringify(patch.tags));
    for (const field of ["result", "error"] as const) {
      if (!(field in patch)) continue;
      const value = patch[field];
      if (value === undefined) del.push(field);
      else set.push(field, JSON.stringify(value));
    }
    const consumed = events.flatMap(consumedOutcome);
    const childrenHeard = events.flatMap((e) =>
      e.type === "child_completed" || e.type === "child_failed" ? [e.childRunId] : [],
    );
    // An activation that continues after an inline step listed no outcomes (see `activation`).
    const guarded = this.inlineSteps.get(runId) === "commit";
    if (guarded) this.inlineSteps.delete(runId);
    const reply = (await this.call(() =>
      this.sendCommit(
        [
          this.key("run", runId),
          this.key("events", runId),
          this.key("pending-outcomes", runId),
          this.key("idx:all"),
        ],
        [
          this.prefix,
          runId,
          expectedVersion,
          patch.status,
          guarded ? "1" : "0",
          serialized.length,
          ...serialized,
          set.length,
          ...set,
          del.length,
          ...del,
          consumed.length,
          ...consumed,
          ...(patch.tags ? [tagKeys(patch.tags).length, ...tagKeys(patch.tags)] : [-1]),
          // A child's finish is indexed until its parent applies it (see `finishedChildren`).
          TELLS_PARENT.has(patch.status) ? Date.parse(patch.updatedAt) || Date.now() : 0,
          childrenHeard.length,
          ...childrenHeard,
        ],
      ),
    )) as CommitReply;
    if (reply === -1) throw new VersionConflictError(runId, expectedVersion);
    const finished = FINISHED_STATUSES.has(patch.status);
    if (finished) this.forgetLog(runId);
    if (reply[1] === 0 && !finished) this.inlineSteps.set(runId, "quiet");
    else this.inlineSteps.delete(runId);
    return { pendingOutcomes: reply[1] > 0 };
  }

  /**
   * Sends a commit with the others made in the same turn of the event loop: one script call for all of them
   * (the activations that one batch of Redis replies woke commit together), so a busy worker pays one round trip,
   * one socket write and one script call per batch instead of per commit. A lone commit goes as it is.
   */
  private sendCommit(keys: string[], args: (string | number)[]): Promise<CommitReply> {
    return new Promise((resolve, reject) => {
      this.commits.push({ keys, args, resolve, reject });
      if (this.commits.length === 1) process.nextTick(() => this.flushCommits());
    });
  }

  private flushCommits(): void {
    const waiting = this.commits;
    this.commits = [];
    for (let at = 0; at < waiting.length; at += MAX_COMMITS_PER_CALL) {
      const batch = waiting.slice(at, at + MAX_COMMITS_PER_CALL);
      const [only] = batch;
      if (batch.length === 1 && only) {
        COMMIT.run(this.client, only.keys, only.args).then(
          (reply) => only.resolve(reply as CommitReply),
          only.reject,
        );
        continue;
      }
      COMMIT_MANY.run(
        this.client,
        batch.flatMap((commit) => commit.keys),
        batch.flatMap((commit) => [commit.args.length, ...commit.args]),
      ).then(
        (replies) => {
          batch.forEach((commit, index) => {
            commit.resolve((replies as CommitReply[])[index] as CommitReply);
          });
        },
        (error: unknown) => {
          for (const commit of batch) commit.reject(error);
        },
      );
    }
  }

  async putOutcome(outcome: StepOutcome): Promise<boolean> {
    assertRunId(outcome.runId);
    const json = JSON.stringify(outcome);
    const stored = await this.call(() =>
      PUT_OUTCOME.run(
        this.client,
        [
          this.key("outcomes", outcome.runId),
          this.key("pending-outcomes", outcome.runId),
          this.key("idx:inbox"),
          this.key("run", outcome.runId),
        ],
        [outcomeField(outcome.stepId, outcome.attempt), json, outcome.runId, Date.now()],
      ),
    );
    return stored === 1;
  }

  async getOutcome(runId: string, stepId: string, attempt: number): Promise<StepOutcome | undefined> {
    assertRunId(runId);
    const json = await this.call(() =>
      this.client.hget(this.key("outcomes", runId), outcomeField(stepId, attempt)),
    );
    return json === null
      ? undefined
      : (parseJson(json, `the outcome of step ${stepId} of run ${runId}`) as StepOutcome);
  }

  async listOutcomes(runId: string): Promise<StepOutcome[]> {
    assertRunId(runId);
    if (this.inlineSteps.get(runId) === "list") {
      // Right after an inline step: what waits is checked by the commit instead (see `activation`).
      this.inlineSteps.set(runId, "commit");
      return [];
    }
    const values =
      this.takeAhead(runId, "outcomes") ??
      ((await this.call(() =>
        LIST_OUTCOMES.run(
          this.client,
          [this.key("outcomes", runId), this.key("pending-outcomes", runId)],
          [],
        ),
      )) as (string | null)[]);
    return values
      .filter((json): json is string => json !== null)
      .map((json) => parseJson(json, `an outcome of run ${runId}`) as StepOutcome);
  }

  /**
   * Saves round trips in one activation of `runId` run by a worker of this process (`createRedisRuntime` wraps
   * each of its workers' activations with it): give the engine the returned lease, and call `end()` once the
   * activation returns.
   * - Its first `getRun` also reads, in the same round trip, what the activation reads next: the log entries
   *   this storage has not seen and the waiting outcomes (for its `getEvents` and `listOutcomes`).
   * - After each step it runs inline (the lease taken back), when this storage's last commit of the run saw no
   *   outcome waiting, its `listOutcomes` answers none without reading, and its commit is refused (a
   *   `VersionConflictError`, after which the engine reads the run again and lists its outcomes) if an outcome
   *   that it does not consume was stored meanwhile: a cancellation or an event stored while the step ran is still
   *   applied before the run's next step starts.
   *
   * It relies on the lease: while it is held, no other activation of the run lists or commits in between.
   * @example
   * import { Engine } from "tsworkflow/engine";
   * import { BullMQQueue, BullMQTimers, RedisStorage } from "tsworkflow/redis";
   * const storage = new RedisStorage({ redis: "redis://127.0.0.1:6379" });
   * const queue = new BullMQQueue({ redis: storage.client });
   * const engine = new Engine({ store: storage, queue, timers: new BullMQTimers({ queue }) });
   * await queue.consume({
   *   activate: async (task, lease) => {
   *     const activation = lease && storage.activation(task.runId, lease);
   *     try {
   *       await engine.activate(task, activation?.lease);
   *     } finally {
   *       activation?.end();
   *     }
   *   },
   *   executeStep: (task) => engine.executeStep(task),
   * });
   */
  activation(runId: string, lease: RunLease): { lease: RunLease; end(): void } {
    this.readsAhead.add(runId);
    const settle = () => {
      if (this.inlineSteps.get(runId) !== "quiet") this.inlineSteps.delete(runId);
    };
    return {
      lease: {
        pause: (step) => {
          settle();
          lease.pause(step);
        },
        resume: async () => {
          const resumed = await lease.resume();
          if (resumed && this.inlineSteps.get(runId) === "quiet") this.inlineSteps.set(runId, "list");
          return resumed;
        },
      },
      end: () => {
        settle();
        this.readsAhead.delete(runId);
        this.readAhead.delete(runId);
      },
    };
  }

  /**
   * For the sweeper (`createRedisRuntime`'s `sweep`): the ids of the unfinished runs that should have moved by
   * `before` (epoch ms) and did not: pending or running runs whose document has not changed since, suspended runs
   * whose wake-up time (a sleep's end, a wait's timeout) is before it. Looks at up to `limit` runs per status,
   * oldest first, going on where the last call of this storage stopped and from the oldest again past the end.
   * @example
   * import { RedisStorage } from "tsworkflow/redis";
   * const storage = new RedisStorage({ redis: "redis://127.0.0.1:6379" });
   * const quiet = await storage.staleRuns(Date.now() - 300_000, 100);
   */
  async staleRuns(before: number, limit: number): Promise<string[]> {
    const stale: string[] = [];
    for (const status of ["pending", "running", "suspended"] as const) {
      const from = this.staleScanFrom.get(status) ?? 0;
      const runIds = await this.call(() =>
        this.client.zrange(this.key("idx:status", status), from, from + limit - 1),
      );
      this.staleScanFrom.set(status, runIds.length < limit ? 0 : from + runIds.length);
      const field = status === "suspended" ? "resumeAt" : "updatedAt";
      const times = await this.call(() =>
        Promise.all(runIds.map((runId) => this.client.hget(this.key("run", runId), field))),
      );
      runIds.forEach((runId, index) => {
        const time = times[index] ?? "";
        if ((field === "resumeAt" ? Number(time || Number.NaN) : Date.parse(time)) < before)
          stale.push(runId);
      });
    }
    return stale;
  }

  /**
   * For the sweeper: child runs that finished before `before` (epoch ms) and whose parent has not applied their
   * result in a commit since (its notification may have been lost), oldest first, up to `limit`. A parent's
   * commit that applies a child's result takes the child off this list; `forgetFinishedChild` takes off one
   * whose parent is done with it otherwise (finished, or heard of a continuation of the child).
   * @example
   * import { RedisStorage } from "tsworkflow/redis";
   * const storage = new RedisStorage({ redis: "redis://127.0.0.1:6379" });
   * const unheard = await storage.finishedChildren(Date.now() - 300_000, 100);
   */
  async finishedChildren(before: number, limit: number): Promise<string[]> {
    return this.call(() =>
      this.client.zrangebyscore(this.key("idx:children-done"), "-inf", `(${before}`, "LIMIT", 0, limit),
    );
  }

  /**
   * For the sweeper: runs suspended with no wake-up time that hold an outcome (an event, a cancellation, a
   * child's result, a step's) stored before `before` (epoch ms) and not applied since: the activation that
   * carried it may have been lost, and nothing else would wake such a run. Looks at up to `limit` listed runs;
   * each one looked at is listed again from `now`, so that a run that keeps an event it does not wait for is
   * returned once per sweep period, not at every sweep. A commit that applies a run's last waiting outcome
   * takes it off the list, and so does this look once the run has finished.
   * @example
   * import { RedisStorage } from "tsworkflow/redis";
   * const storage = new RedisStorage({ redis: "redis://127.0.0.1:6379" });
   * const waiting = await storage.unappliedOutcomes(Date.now() - 300_000, 100, Date.now());
   */
  async unappliedOutcomes(before: number, limit: number, now: number): Promise<string[]> {
    return (await this.call(() =>
      UNAPPLIED_OUTCOMES.run(
        this.client,
        [this.key("idx:inbox")],
        [this.prefix, before, limit, now, ...FINISHED_STATUSES],
      ),
    )) as string[];
  }

  /** Takes a child run off the `finishedChildren` list. */
  async forgetFinishedChild(runId: string): Promise<void> {
    await this.call(() => this.client.zrem(this.key("idx:children-done"), runId));
  }

  /**
   * Sends the commits asked for so far, then closes the connection if this storage opened it (from a URL):
   * every call from then on throws `StorageClosedError`. A client you passed stays open, and so does this
   * storage on it.
   */
  async close(): Promise<void> {
    this.connectionClosed = this.connection.owned;
    // Commits asked for in this turn go before the connection closes, as they would have without batching.
    if (this.commits.length > 0) this.flushCommits();
    await closeRedis(this.connection);
  }

  private rememberLog(runId: string, raw: string[]): void {
    this.forgetLog(runId);
    if (raw.length === 0 || raw.length > this.eventCacheSize) return;
    this.logCache.set(runId, raw);
    this.cachedEvents += raw.length;
    // Oldest read first.
    for (const [oldest, entries] of this.logCache) {
      if (this.cachedEvents <= this.eventCacheSize) break;
      this.logCache.delete(oldest);
      this.cachedEvents -= entries.length;
    }
  }

  private forgetLog(runId: string): void {
    const entries = this.logCache.get(runId);
    if (!entries) return;
    this.logCache.delete(runId);
    this.cachedEvents -= entries.length;
  }

  private key(kind: string, id?: string): string {
    return id === undefined ? `${this.prefix}${kind}` : `${this.prefix}${kind}:${id}`;
  }

  private async call<T>(operation: () => Promise<T>): Promise<T> {
    if (this.connectionClosed)
      throw new StorageClosedError(
        `The RedisStorage of ${this.connection.url} (prefix "${this.prefix}")`,
        "Its connection is closed: create a new RedisStorage (or a new runtime) to go on.",
      );
    try {
      return await operation();
    } catch (error) {
      throw mapRedisError(error, this.connection);
    }
  }

  private toRecord(runId: string, hash: Record<string, string>): RunRecord {
    const where = `the run document of ${runId}`;
    const status = hash.status as RunStatus;
    if (!STATUSES.has(status) || !hash.workflowName || !hash.createdAt || !hash.input) {
      throw new InvalidEventError(
        `Invalid ${where} in Redis (key ${this.key("run", runId)}): it was written by an incompatible version or edited by hand.`,
      );
    }
    const record: RunRecord = {
      runId,
      workflowName: hash.workflowName,
      status,
      input: parseJson(hash.input, where) as unknown[],
      createdAt: hash.createdAt,
      updatedAt: hash.updatedAt ?? hash.createdAt,
      version: Number(hash.version),
    };
    if (hash.result !== undefined) record.result = parseJson(hash.result, where);
    if (hash.error !== undefined) record.error = parseJson(hash.error, where) as SerializedError;
    if (hash.idempotencyKey !== undefined) record.idempotencyKey = hash.idempotencyKey;
    if (hash.tags !== undefined) record.tags = parseJson(hash.tags, where) as RunTags;
    if (hash.workflowVersion !== undefined) record.workflowVersion = hash.workflowVersion;
    return record;
  }
}

function runFields(run: RunRecord): string[] {
  const fields = [
    "runId",
    run.runId,
    "workflowName",
    run.workflowName,
    "status",
    run.status,
    "input",
    JSON.stringify(run.input),
    "createdAt",
    run.createdAt,
    "updatedAt",
    run.updatedAt,
    "version",
    "1",
  ];
  if (run.result !== undefined) fields.push("result", JSON.stringify(run.result));
  if (run.error !== undefined) fields.push("error", JSON.stringify(run.error));
  if (run.idempotencyKey !== undefined) fields.push("idempotencyKey", run.idempotencyKey);
  if (run.workflowVersion !== undefined) fields.push("workflowVersion", run.workflowVersion);
  if (run.tags !== undefined)
    fields.push("tags", JSON.stringify(run.tags), "tagKeys", tagKeys(run.tags).join("\n"));
  return fields;
}

/** The index names of the tags (`key=value`; values hold no newline, see `validateTags`). */
function tagKeys(tags: RunTags | undefined): string[] {
  return Object.entries(tags ?? {}).map(([key, value]) => tagKey(key, value));
}

function createdScore(run: RunRecord): number {
  const ms = Date.parse(run.createdAt);
  if (Number.isNaN(ms))
    throw new InvalidEventError(
      `Run ${run.runId} has createdAt ${JSON.stringify(run.createdAt)}, which is not an ISO 8601 date.`,
    );
  return ms;
}

function parseJson(json: string, where: string): unknown {
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new InvalidEventError(
      `Invalid JSON in ${where}: it was written by an incompatible version or edited by hand.`,
      { cause: error },
    );
  }
}
