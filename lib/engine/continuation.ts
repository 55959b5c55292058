import { sha256 } from "../core/hash.ts";
import { optional } from "../core/optional.ts";
import type { RunPage, RunRecord } from "../ports/event-store.ts";

/** The idempotency key of a run that continues another (`continueAsNew`): `continue:<runId>`. */
const CONTINUE_PREFIX = "continue:";

/** The run that continues a run (`continueAsNew`) has an id that follows from its own: created once. */
export function continuationRunIdOf(runId: string): string {
  const digest = sha256(`${runId}\u0000continue`).slice(0, 24);
  return `cont_${digest}`;
}

/** The idempotency key that starts the continuation of `runId` once. */
export function continuationKeyOf(runId: string): string {
  return `${CONTINUE_PREFIX}${runId}`;
}

/**
 * The run with its links along a `continueAsNew` chain: `continuedFrom` (from its idempotency key) and, once
 * it is `continued`, `continuedAs`. Both follow from what the stores keep, so no store holds them.
 */
export function withChainLinks(run: RunRecord): RunRecord {
  const from = run.idempotencyKey?.startsWith(CONTINUE_PREFIX)
    ? run.idempotencyKey.slice(CONTINUE_PREFIX.length)
    : undefined;
  if (from === undefined && run.status !== "continued") return run;
  return {
    ...run,
    ...optional("continuedFrom", from),
    ...(run.status === "continued" ? { continuedAs: continuationRunIdOf(run.runId) } : {}),
  };
}

/** {@link withChainLinks} for a run that may not exist. */
export function linkedRun(run: RunRecord | undefined): RunRecord | undefined {
  return run && withChainLinks(run);
}

/** {@link withChainLinks} for each run of a page. */
export function linkedPage(page: RunPage): RunPage {
  return { ...page, runs: page.runs.map(withChainLinks) };
}
