/**
 * The options of `start()` and `waitForRun()`, checked at the call on every runtime (embedded, Redis, the AWS
 * client): a misspelt `idempotencyKey` would start another run at each retry of the caller, a misspelt
 * `timeoutMs` wait for ever. TypeScript flags them only in an object literal.
 */
import { booleanOption, checkOptionNames, MAX_TIMER_MS, optionError, timerOption } from "../core/options.ts";
import type { GetRunOptions, StartOptions, WaitOptions } from "../ports/runtime.ts";

const START_OPTIONS = Object.keys({ idempotencyKey: 0, tags: 0 } satisfies Record<keyof StartOptions, 0>);
const WAIT_OPTIONS = Object.keys({
  timeoutMs: 0,
  followContinuations: 0,
} satisfies Record<keyof (WaitOptions & GetRunOptions), 0>);

/** @throws ConfigurationError for an unknown option (the values are checked by the engine) */
export function checkStartOptions(options: StartOptions | undefined): void {
  if (options !== undefined) checkOptionNames("start()", options, START_OPTIONS);
}

/**
 * @param also - the runtime's own options beside the common ones (the Redis runtime's `pollMs`)
 * @throws ConfigurationError for an unknown option, a `timeoutMs` that is not a number of milliseconds
 *   from 0 to 2,147,483,647 (about 24.8 days), or a `followContinuations` that is not true or false
 */
export function checkWaitOptions(
  options: WaitOptions & GetRunOptions & { pollMs?: number },
  also: readonly string[] = [],
): void {
  checkOptionNames("waitForRun()", options, [...WAIT_OPTIONS, ...also]);
  const { timeoutMs } = options;
  if (
    timeoutMs !== undefined &&
    !(typeof timeoutMs === "number" && timeoutMs >= 0 && timeoutMs <= MAX_TIMER_MS)
  )
    throw optionError(
      "waitForRun()",
      "timeoutMs",
      `a number of milliseconds from 0 to ${MAX_TIMER_MS} (about 24.8 days)`,
      timeoutMs,
    );
  booleanOption("waitForRun()", "followContinuations", options.followContinuations);
  timerOption("waitForRun()", "pollMs", options.pollMs, 1);
}
