import { sha256 } from "../../core/hash.ts";
import type { RunStatus } from "../../ports/event-store.ts";

/** Keys of the single-table layout (see `TABLE_SCHEMA`). */

export const RUN_SK = "RUN";
export const IDEM_SK = "IDEM";
export const COMMIT_PREFIX = "COMMIT#";
export const OUTCOME_PREFIX = "OUT#";

/**
 * Each index partition is spread over this many shards (by a hash of the run id), so that status
 * changes and new runs write to 16 times as many partitions; listing queries the shards and merges.
 */
export const INDEX_SHARDS = 16;

export const runPk = (runId: string) => `RUN#${runId}`;
export const runIdOfPk = (pk: string) => pk.slice("RUN#".length);
export const commitSk = (firstSeq: number) => `${COMMIT_PREFIX}${String(firstSeq).padStart(10, "0")}`;
export const partSk = (firstSeq: number, part: number) =>
  `${commitSk(firstSeq)}#P${String(part).padStart(2, "0")}`;
/** Past every commit key and its parts (commit keys are digits, parts `#P<nn>`). */
export const COMMIT_END = `${COMMIT_PREFIX}~`;
/**
 * A step attempt's outcome: under the seq of the event that issued it (`OUT#!<seq>#…`, in seq order, so an
 * activation queries only the attempts it still waits on), or for outcomes without one (events,
 * cancellations, child results, tasks of older versions) `OUT#<stepId>#<attempt>`: those sort after every
 * `OUT#!` key ("$" and letters come after "!"), so the query from a seq always reads them.
 */
export const outcomeSk = (stepId: string, attempt: number, issueSeq?: number) =>
  `${issueSeq === undefined ? OUTCOME_PREFIX : outcomeFrom(issueSeq)}${stepId}#${String(attempt).padStart(6, "0")}`;
/** The first outcome key of attempts issued at `seq` or later. */
export const outcomeFrom = (seq: number) => `${OUTCOME_PREFIX}!${String(seq).padStart(10, "0")}#`;
/** Past every outcome key (step ids and the reserved ids are made of characters below "~"). */
export const OUTCOME_END = `${OUTCOME_PREFIX}~`;
export const idemPk = (key: string) => `IDEM#${key}`;

/** The run's shard, 00 to 15: the same run always lands on the same shard. */
export function shardOf(runId: string): string {
  const byte = Number.parseInt(sha256(runId).slice(0, 2), 16);
  return String(byte % INDEX_SHARDS).padStart(2, "0");
}

export const shards = (): string[] =>
  Array.from({ length: INDEX_SHARDS }, (_, shard) => String(shard).padStart(2, "0"));

export const statusKey = (status: RunStatus, shard: string) => `STATUS#${status}#${shard}`;
export const workflowKey = (name: string, shard: string) => `WF#${name}#${shard}`;
export const dueKey = (shard: string) => `DUE#${shard}`;
/** Newest first when sorted descending; unique per run. */
export const gsiSortKey = (createdAt: string, runId: string) => `${createdAt}#${runId}`;
/** A tag's item in the run's partition (`key=value`), listed through gsi2 under `TAG#key=value#<shard>`. */
export const tagSk = (tag: string) => `TAG#${tag}`;
export const tagIndexKey = (tag: string, shard: string) => `TAG#${tag}#${shard}`;
/** Earliest first: when the sweeper should look at the run. */
export const dueSortKey = (dueAt: number, runId: string) => `${new Date(dueAt).toISOString()}#${runId}`;
