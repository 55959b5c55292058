import { describe, InvalidRunQueryError } from "../core/errors.ts";
import type { RunQuery } from "./event-store.ts";

/** Where a page of runs stopped: the last run it holds, in the newest-first order of `listRuns`. */
export interface RunPosition {
  createdAt: string;
  runId: string;
}

/** The cursor after `run`: opaque text (base64url JSON) for the stores that order runs by creation time. */
export function encodeRunCursor(run: RunPosition): string {
  return Buffer.from(JSON.stringify([run.createdAt, run.runId])).toString("base64url");
}

/**
 * The position a cursor names.
 * @throws InvalidRunQueryError for text that no `listRuns` of these stores returned
 */
export function decodeRunCursor(cursor: string): RunPosition {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch (cause) {
    throw invalidCursor(cursor, cause);
  }
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    typeof value[0] !== "string" ||
    typeof value[1] !== "string" ||
    Number.isNaN(Date.parse(value[0]))
  )
    throw invalidCursor(cursor);
  return { createdAt: value[0], runId: value[1] };
}

function invalidCursor(cursor: string, cause?: unknown): InvalidRunQueryError {
  const shown = cursor.length > 40 ? `${cursor.slice(0, 40)}…` : cursor;
  return new InvalidRunQueryError(
    `Invalid cursor ${JSON.stringify(shown)}: pass the nextCursor of an earlier page of listRuns, unchanged.`,
    { cause },
  );
}

/** True when `run` comes after `position` in newest-first order (older, or as old with a smaller run id). */
export function isAfter(run: RunPosition, position: RunPosition): boolean {
  return run.createdAt === position.createdAt
    ? run.runId < position.runId
    : run.createdAt < position.createdAt;
}

/** Newest first: by `createdAt`, then by run id, both descending (code-unit order, as Redis sorts members). */
export function newestFirst(a: RunPosition, b: RunPosition): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.runId === b.runId ? 0 : a.runId < b.runId ? 1 : -1;
}

/**
 * The page size a query asks for.
 * @throws InvalidRunQueryError unless it is a whole number ≥ 0
 */
export function pageLimit(query: RunQuery): number {
  const limit = query.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 0)
    throw new InvalidRunQueryError(
      `Invalid limit ${describe(limit)}: listRuns takes a whole number of runs per page, 0 or more (default 100).`,
    );
  return limit;
}

/**
 * One page out of runs already sorted newest first: the `limit` runs after the query's cursor, and a
 * cursor to the next page when more follow.
 */
export function pageOf<T extends RunPosition>(
  sorted: readonly T[],
  query: RunQuery,
): { runs: T[]; nextCursor?: string } {
  const limit = pageLimit(query);
  const after = query.cursor === undefined ? undefined : decodeRunCursor(query.cursor);
  let start = 0;
  if (after) {
    // Binary search: the first run after the cursor's position.
    let high = sorted.length;
    while (start < high) {
      const middle = (start + high) >>> 1;
      if (isAfter(sorted[middle] as T, after)) high = middle;
      else start = middle + 1;
    }
  }
  const runs = sorted.slice(start, start + limit);
  const last = runs[runs.length - 1];
  return last && start + limit < sorted.length ? { runs, nextCursor: encodeRunCursor(last) } : { runs };
}
