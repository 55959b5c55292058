import { RunNotFoundError } from "../core/errors.ts";
import type { RunRecord } from "../ports/event-store.ts";
import type { GetRunOptions, WaitOptions } from "../ports/runtime.ts";
import { checkWaitOptions } from "./call-options.ts";

/** A runtime's read of one run document, with its chain links. */
type ReadRun = (runId: string) => Promise<RunRecord | undefined>;
/** A runtime's wait for one run. */
type WaitForOneRun = (runId: string, options: WaitOptions) => Promise<RunRecord>;

/** The last run of `run`'s `continueAsNew()` chain created so far (`run` itself when it did not continue). */
export async function lastOfChain(run: RunRecord, read: ReadRun): Promise<RunRecord> {
  let last = run;
  while (last.continuedAs) {
    const next = await read(last.continuedAs);
    // Not created yet (the moment after the commit): the chain ends here for now.
    if (!next) break;
    last = next;
  }
  return last;
}

/** A runtime's `getRun`: the run read with `read`, or with `followContinuations` the last run of its chain. */
export async function getRunOrLast(
  read: ReadRun,
  runId: string,
  { followContinuations }: GetRunOptions = {},
): Promise<RunRecord | undefined> {
  const run = await read(runId);
  return run && followContinuations ? lastOfChain(run, read) : run;
}

/**
 * Waits for the run and, with `followContinuations`, along its `continueAsNew()` chain until its last run
 * finishes otherwise, all within the one `timeoutMs`.
 * @param also - the runtime's own options beside the common ones (see `checkWaitOptions`)
 * @throws ConfigurationError for bad options, before anything is read
 */
export async function waitAlongChain(
  wait: WaitForOneRun,
  runId: string,
  options: WaitOptions & GetRunOptions,
  also?: readonly string[],
): Promise<RunRecord> {
  checkWaitOptions(options, also);
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  const remaining = () => (deadline === undefined ? {} : { timeoutMs: Math.max(0, deadline - Date.now()) });
  let run = await wait(runId, remaining());
  while (options.followContinuations && run.continuedAs) {
    run = await waitForContinuation(wait, run.continuedAs, remaining);
  }
  return run;
}

/** The next run of a chain is created just after the commit that ended the previous one: wait for it too. */
async function waitForContinuation(
  wait: WaitForOneRun,
  runId: string,
  remaining: () => WaitOptions,
): Promise<RunRecord> {
  for (;;) {
    try {
      return await wait(runId, remaining());
    } catch (error) {
      if (!(error instanceof RunNotFoundError) || remaining().timeoutMs === 0) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
