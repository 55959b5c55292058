import { randomUUID } from "node:crypto";
import type { RedisStorage } from "../adapters/redis/redis-storage.ts";
import { ConfigurationError } from "../core/errors.ts";
import { getLogger } from "../core/logger.ts";
import { timerOption } from "../core/options.ts";
import { parentHeardOf } from "../engine/run-links.ts";
import type { Clock } from "../ports/clock.ts";
import type { TaskQueue } from "../ports/task-queue.ts";

/** Options of the Redis runtime's sweeper (`createRedisRuntime({ sweep })`). */
export interface RedisSweepOptions {
  /**
   * How often the workers sweep: each worker tries every `everyMs`, and one sweep at most runs per `everyMs`
   * across all workers of the same Redis and prefix.
   * @default 60000
   */
  everyMs?: number;
  /**
   * A pending or running run whose document has not changed for this long, or a suspended run this long past
   * its wake-up time, is activated again with cause `recover` (it re-sends its pending steps and re-arms its
   * timers; BullMQ's job ids make a re-send of a step that is still queued or running a no-op, so a long step
   * is not run twice). So is a run with an outcome (an event sent to it, a step's result) stored this long ago
   * and not applied yet (its activation was lost), at most once per `staleAfterMs`: that covers a run waiting
   * for an event without a timeout. A child run that finished this long ago and whose parent has not applied
   * its result yet (the notification was lost) is activated again too, and tells its parent again.
   * @default 300000 (5 minutes)
   */
  staleAfterMs?: number;
  /**
   * Runs looked at per status (pending, running, suspended) and sweep; each sweep goes on where the last one
   * of the same worker stopped.
   * @default 100
   */
  limit?: number;
}

/** What the sweeper needs of the runtime. */
export interface SweepTarget {
  storage: RedisStorage;
  queue: TaskQueue;
  clock: Clock;
}

/** The options with their defaults, checked. */
export function sweepSettings(options: RedisSweepOptions = {}): Required<RedisSweepOptions> {
  const settings = {
    everyMs: options.everyMs ?? 60_000,
    staleAfterMs: options.staleAfterMs ?? 300_000,
    limit: options.limit ?? 100,
  };
  for (const [name, value] of Object.entries(settings)) {
    const least = name === "staleAfterMs" ? 0 : 1;
    if (!Number.isInteger(value) || value < least)
      throw new ConfigurationError(
        `sweep.${name} must be a whole number ≥ ${least}, got ${JSON.stringify(value)}.`,
      );
  }
  timerOption("createRedisRuntime()", "sweep.everyMs", settings.everyMs, 1);
  return settings;
}

/**
 * One sweep: activates again, with cause `recover`, every unfinished run that should have moved `staleAfterMs`
 * ago and did not (a task lost with a job that failed for good or vanished, a timer whose activation failed
 * for good while Redis was away, an event whose activation was lost), and every child run that finished that
 * long ago without its parent applying its result. Returns the run ids it activated.
 */
export async function sweepStaleRuns(
  target: SweepTarget,
  options: RedisSweepOptions = {},
): Promise<string[]> {
  const { staleAfterMs, limit } = sweepSettings(options);
  const before = target.clock.now() - staleAfterMs;
  const recover = (runId: string) => target.queue.enqueueActivation({ runId, cause: { kind: "recover" } });
  const stale = await target.storage.staleRuns(before, limit);
  for (const runId of stale) await recover(runId);
  // A finished child whose parent has not applied its result (the notification's job failed for good): its
  // activation finds it finished and tells the parent again. It stays listed until the parent has the result.
  const unheard: string[] = [];
  for (const runId of await target.storage.finishedChildren(before, limit)) {
    if (await parentHeardOf(target.storage, runId)) {
      await target.storage.forgetFinishedChild(runId);
      continue;
    }
    await recover(runId);
    unheard.push(runId);
  }
  // A run with an outcome stored and not applied (an event whose activation was lost): above all a run waiting
  // for an event without a timeout, which has no wake-up time and is not stale by its document.
  const unapplied = (await target.storage.unappliedOutcomes(before, limit, target.clock.now())).filter(
    (runId) => !stale.includes(runId),
  );
  for (const runId of unapplied) await recover(runId);
  return [...stale, ...unheard, ...unapplied];
}

/**
 * Sweeps every `everyMs` while started, when no other worker of the same prefix swept in the last `everyMs`
 * (a lease in Redis: `<prefix>sweep-lease`, left to expire). Returns a function that stops it.
 */
export function startSweeper(
  target: SweepTarget,
  prefix: string,
  options: RedisSweepOptions = {},
): () => void {
  const settings = sweepSettings(options);
  const lease = `${prefix}sweep-lease`;
  let sweeping = false;
  const tick = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      const taken = await target.storage.client.set(lease, randomUUID(), "PX", settings.everyMs, "NX");
      if (taken !== "OK") return;
      const recovered = await sweepStaleRuns(target, settings);
      if (recovered.length > 0)
        getLogger().info(
          `sweeper: ${recovered.length} run(s) had not moved for ${settings.staleAfterMs} ms and were activated again`,
          { runIds: recovered.slice(0, 20) },
        );
    } catch (error) {
      getLogger().warn(
        `sweeper: the sweep failed and is tried again in ${settings.everyMs} ms: ${String(error)}`,
      );
    } finally {
      sweeping = false;
    }
  };
  const timer = setInterval(() => void tick(), settings.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
