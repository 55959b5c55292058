import { systemClock } from "../../ports/clock.ts";
import { reapExpiredRuns } from "../reaper.ts";
import type { ScheduleReconcileReport } from "../schedules.ts";
import { type SweepReport, sweep } from "../sweeper.ts";
import type { DynamoDbStreamEvent, LambdaContext } from "./lambda-types.ts";
import { loggerFor } from "./log-context.ts";
import { type HandlerOptions, runtimeFor, type WorkflowRegistry } from "./options.ts";

export type SweeperHandler = (
  event: unknown,
  context: LambdaContext,
) => Promise<SweepReport & { schedules?: ScheduleReconcileReport }>;
export type ReaperHandler = (
  event: DynamoDbStreamEvent,
  context: LambdaContext,
) => Promise<{ reaped: string[] }>;

/**
 * The sweeper function, run every few minutes by a schedule of the construct: re-sends what runs are
 * missing (see `sweep`): a sleep whose timer was lost, a message lost with its run pending or running, a
 * finished child whose parent was never told. With `registry.schedules`, it then reconciles the
 * declared schedules with EventBridge Scheduler (a no-op unless a deploy changed them).
 * @example
 * import { createSweeperHandler } from "tsworkflow/aws";
 * export const sweeperHandler = createSweeperHandler({ workflows: [onboarding] });
 */
export function createSweeperHandler(
  registry: WorkflowRegistry,
  options: HandlerOptions = {},
): SweeperHandler {
  const runtime = runtimeFor(registry, options);
  const clock = options.clock ?? systemClock;
  return async (_event, context) => {
    loggerFor(context);
    const seconds = runtime.config.sweepStaleAfterSeconds;
    const report = await sweep(runtime, {
      now: clock.now(),
      ...(seconds === undefined ? {} : { staleAfterMs: seconds * 1000 }),
    });
    if (!registry.schedules) return report;
    return { ...report, schedules: await registry.schedules.reconcile(runtime, clock.now()) };
  };
}

/**
 * The reaper function, fed by the table's stream (only DynamoDB's TTL deletions of run documents pass
 * the construct's filter): deletes the rest of each expired run and its S3 payloads (see
 * `reapExpiredRuns`). A failure fails the batch, which the stream delivers again.
 * @example
 * export const { reaperHandler } = createHandlers({ workflows: [onboarding] });
 */
export function createReaperHandler(registry: WorkflowRegistry, options: HandlerOptions = {}): ReaperHandler {
  const runtime = runtimeFor(registry, options);
  return async (event, context) => {
    loggerFor(context);
    return { reaped: await reapExpiredRuns(runtime, event.Records) };
  };
}
