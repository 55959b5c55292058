import { dynamoDBStoreFor } from "../adapters/aws/dynamodb-engine-store.ts";
import { deduplicationId, type SqsTaskQueue } from "../adapters/aws/sqs-queue.ts";
import { getLogger } from "../core/logger.ts";
import { parentHeardOf } from "../engine/run-links.ts";
import { type EventStore, FINISHED_STATUSES, type RunRecord } from "../ports/event-store.ts";

/** Options of {@link sweep}. */
export interface SweepOptions {
  /** Epoch ms. @default Date.now() */
  now?: number;
  /**
   * A pending or running run unchanged for this long has lost a message: it is activated again
   * (everything pending is re-sent; duplicates are harmless). Longer than a step can take with its
   * redeliveries (the construct sets twice the step queue's visibility timeout).
   * @default 3600000 (1 hour)
   */
  staleAfterMs?: number;
  /**
   * A due time (a sleep's wake-up, a child's finish) is acted on once it is this far in the past: a
   * timer that works fires well within it.
   * @default 60000 (1 minute)
   */
  graceMs?: number;
  /**
   * Runs looked at per index shard and kind, per sweep. The stale check goes on from sweep to sweep (on
   * the same store) where the last one stopped, so every pending or running run is looked at in turn.
   * @default 100
   */
  limit?: number;
}

/** What one sweep did, by run id. */
export interface SweepReport {
  /**
   * Suspended runs past their wake-up time (a lost or dead-lettered timer), or with an event, a cancellation
   * or a child's result that no activation has listed (a lost activation): activated again.
   */
  overdue: string[];
  /** Pending or running runs with nothing heard for `staleAfterMs` (a lost message): activated again. */
  stale: string[];
  /** Finished child runs whose parent still waited: the child's finish is handed to the parent again. */
  children: string[];
}

/**
 * Finds runs whose document, timers or pending tasks disagree with their log, and re-sends what is
 * missing: an activation with cause `recover` re-arms the run's timers, re-sends its pending steps,
 * applies a due sleep, and (for a finished child) tells the parent again. Every action is idempotent:
 * a second sweep, or a sweep of a run that was fine, changes no log (the engine treats the activation
 * as a redelivery, the store ignores a repeated outcome). The sweeper function of the construct runs
 * it every few minutes.
 * @example
 * import { createAwsRuntime, loadConfig, sweep } from "tsworkflow/aws";
 * const runtime = createAwsRuntime(loadConfig());
 * const report = await sweep(runtime);
 */
export async function sweep(
  runtime: { store: EventStore; queue: SqsTaskQueue },
  options: SweepOptions = {},
): Promise<SweepReport> {
  const store = dynamoDBStoreFor("The sweeper reads the DynamoDB store's indexes", runtime.store);
  const now = options.now ?? Date.now();
  const staleAfterMs = options.staleAfterMs ?? 3_600_000;
  const found = await store.findRunsToSweep({
    now: now - (options.graceMs ?? 60_000),
    staleBefore: now - staleAfterMs,
    limit: options.limit ?? 100,
  });
  const report: SweepReport = { overdue: [], stale: [], children: [] };
  const activate = (run: RunRecord, reason: string) =>
    runtime.queue.sendActivation(
      { runId: run.runId, cause: { kind: "recover" } },
      // Two sweeps of the same state within SQS's 5 minutes send one activation.
      deduplicationId(`${run.runId}:sweep:${reason}:${run.version}`),
    );
  for (const run of found.due) {
    if (run.status === "suspended") {
      await activate(run, "overdue");
      report.overdue.push(run.runId);
    } else if (FINISHED_STATUSES.has(run.status)) {
      if (!(await parentHeardOf(store, run.runId))) {
        // The child's activation finds the run finished and hands its result to the parent again.
        await activate(run, "child");
        report.children.push(run.runId);
      }
      await store.clearDue(run.runId);
    }
  }
  for (const run of found.stale) {
    await activate(run, "stale");
    report.stale.push(run.runId);
  }
  if (report.overdue.length + report.stale.length + report.children.length > 0)
    getLogger().warn("sweeper re-sent what runs were missing", { ...report });
  return report;
}
