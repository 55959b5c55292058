import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { type AwsScheduleState, DynamoDBScheduleStore } from "../adapters/aws/dynamodb-schedule-store.ts";
import {
  EventBridgeSchedules,
  fingerprint,
  type RecurringScheduleTarget,
  recurringScheduleRequest,
} from "../adapters/aws/eventbridge-schedules.ts";
import { SchedulerConnection } from "../adapters/aws/scheduler-connection.ts";
import { messageBody, type QueueMessage } from "../adapters/aws/sqs-queue.ts";
import { ConfigurationError, InvalidMessageError } from "../core/errors.ts";
import { getLogger } from "../core/logger.ts";
import { optional } from "../core/optional.ts";
import { FINISHED_STATUSES } from "../ports/event-store.ts";
import type { ScheduleDeclaration } from "../ports/schedule-store.ts";
import { type AwsRuntime, clientSettings } from "../runtimes/aws.ts";
import { declarationOf, type ScheduleDefinition, tickKey, triggerKey } from "../schedules/schedule.ts";
import { dateOf, failureOf, type ScheduleFailure, startFailed } from "../schedules/start-failure.ts";

/** A tick message, as EventBridge Scheduler puts it on the step queue. */
export type TickMessage = Extract<QueueMessage, { kind: "tick" }>;

/** What one reconcile changed, by schedule name. */
export interface ScheduleReconcileReport {
  created: string[];
  updated: string[];
  deleted: string[];
}

/**
 * The declared schedules of a bundle on AWS, handed to `createHandlers({ workflows, schedules })`: the
 * sweeper function reconciles them with EventBridge Scheduler, the step function starts each tick's run.
 */
export interface AwsSchedules {
  readonly definitions: readonly ScheduleDefinition[];
  /**
   * Creates, updates and deletes the EventBridge schedules to match the declarations. Does nothing (one
   * GetItem) when the declarations are those the last reconcile applied; a paused schedule stays paused.
   */
  reconcile(runtime: AwsRuntime, now: number): Promise<ScheduleReconcileReport>;
  /** Starts the run of one tick, once per tick, honouring the schedule's `overlap`. */
  tick(runtime: AwsRuntime, message: TickMessage, now: number): Promise<void>;
}

/** How often a tick held back by `overlap: "buffer-one"` looks again at the previous run, in seconds. */
export const BUFFER_POLL_SECONDS = 60;

/** Options of {@link awsSchedules}. */
export interface AwsSchedulesOptions {
  /**
   * Seconds between two looks at the previous run while `overlap: "buffer-one"` holds a tick back (the
   * tick's message waits on the step queue with this `DelaySeconds`, 0 to 900).
   * @default 60
   */
  bufferPollSeconds?: number;
}

/**
 * Declares schedules for the AWS handlers: one EventBridge Scheduler recurring schedule each, in the
 * kit's schedule group (`cron(...)` in the schedule's time zone, or `rate(...)` for `every`), whose
 * target puts a tick on the step queue; the step function starts the tick's run with the idempotency
 * key `schedule:<name>:<tick>` (a tick delivered twice starts one run). The sweeper function creates,
 * updates and deletes the schedules to match, on its first run after a deploy that changed them.
 * @example
 * import { createHandlers, awsSchedules } from "tsworkflow/aws";
 * import { schedule } from "tsworkflow/engine";
 * const daily = schedule("daily-report", report, { cron: "0 9 * * MON-FRI", timezone: "Europe/Paris" });
 * export const handlers = createHandlers({ workflows: [report], schedules: awsSchedules([daily]) });
 * @throws UnsupportedScheduleError (at cold start) for a schedule EventBridge Scheduler cannot express
 * @throws ConfigurationError for two schedules with the same name
 */
export function awsSchedules(
  definitions: readonly ScheduleDefinition[],
  options: AwsSchedulesOptions = {},
): AwsSchedules {
  const bufferPollSeconds = options.bufferPollSeconds ?? BUFFER_POLL_SECONDS;
  const byName = new Map<string, ScheduleDefinition>();
  for (const definition of definitions) {
    if (byName.has(definition.name))
      throw new ConfigurationError(`Two schedules are named "${definition.name}": give each a unique name.`);
    byName.set(definition.name, definition);
  }
  // Fails now (at cold start, and in any test that builds the handlers) for an inexpressible schedule.
  const probe = { stepQueueArn: "", schedulerRoleArn: "", scheduleGroup: "" };
  for (const definition of definitions) recurringScheduleRequest(definition, probe);
  return {
    definitions,
    async reconcile(runtime, now) {
      const store = scheduleStoreOf(runtime);
      const target = targetOf(runtime);
      const wanted = definitions.map((definition) => {
        const request = recurringScheduleRequest(definition, target);
        const args = definition.options.args ?? [];
        return {
          definition,
          request,
          args,
          declaration: awsDeclarationOf(definition),
          fingerprint: fingerprint({ request, workflow: definition.workflow.name, args }),
        };
      });
      // With the declarations: state stored by a version that kept none gets them at the next sweep.
      const hash = fingerprint(
        wanted.map(({ definition, fingerprint, declaration }) => [definition.name, fingerprint, declaration]),
      );
      const report: ScheduleReconcileReport = { created: [], updated: [], deleted: [] };
      if ((await store.declared()) === hash) return report;
      // Loaded only when the declared schedules changed (a deploy), not at every sweep.
      const scheduler = new SchedulerConnection({
        client: runtime.clients.scheduler,
        clientConfig: clientSettings(runtime.config, runtime.config.endpoints.scheduler),
      });
      const schedules = new EventBridgeSchedules(scheduler, target.scheduleGroup);
      const states = new Map((await store.list()).map((state) => [state.name, state]));
      try {
        for (const name of states.keys()) {
          if (byName.has(name)) continue;
          await schedules.delete(name);
          await store.delete(name);
          report.deleted.push(name);
        }
        for (const { definition, request, args, declaration, fingerprint } of wanted) {
          const state = states.get(definition.name);
          const scheduled = state?.fingerprint === fingerprint;
          if (scheduled && JSON.stringify(state.declaration) === JSON.stringify(declaration)) continue;
          const paused = state ? state.paused : (definition.options.paused ?? false);
          // Only the stored declaration to write: the EventBridge schedule is as declared.
          if (!scheduled) await schedules.put(request, !paused, state !== undefined);
          await store.put({
            ...(state ?? { name: definition.name, lastTick: now }),
            paused,
            workflow: definition.workflow.name,
            args,
            fingerprint,
            declaration,
          });
          if (!scheduled) (state ? report.updated : report.created).push(definition.name);
        }
      } catch (error) {
        throw withPermissionHint(error);
      } finally {
        scheduler.close();
      }
      await store.setDeclared(hash);
      if (report.created.length + report.updated.length + report.deleted.length > 0)
        getLogger().info("schedules reconciled", { ...report });
      return report;
    },
    async tick(runtime, message, now) {
      const logger = getLogger();
      const definition = byName.get(message.schedule);
      const tick = Date.parse(message.scheduledTime);
      if (Number.isNaN(tick))
        throw new InvalidMessageError(
          `The tick of schedule "${message.schedule}" has no valid scheduled time ("${message.scheduledTime}").`,
        );
      const store = scheduleStoreOf(runtime);
      const notDeclared = () =>
        // Removed from the code, or deleted: the next reconcile deletes its EventBridge schedule.
        logger.warn("tick of a schedule that is not declared here; nothing started", {
          schedule: message.schedule,
          tick: message.scheduledTime,
        });
      if (!definition) return notDeclared();
      let state: AwsScheduleState | undefined;
      try {
        state = await store.get(definition.name);
        if (!state) return notDeclared();
        // Paused: nothing starts (a held tick is dropped by resumeSchedule). A held tick's message that
        // comes back after its tick started (or was replaced) is stale.
        if (state.paused || (message.buffered && state.bufferedTick !== tick)) return;
        const overlap = definition.options.overlap ?? "skip";
        if (overlap !== "allow" && (await previousRunning(runtime, state))) {
          if (overlap === "buffer-one" && (state.bufferedTick ?? tick) === tick) {
            if (state.bufferedTick === undefined) await store.update(definition.name, { bufferedTick: tick });
            await runtime.queue.stepQueue.send({
              MessageBody: messageBody({ ...message, buffered: true }),
              DelaySeconds: bufferPollSeconds,
            });
            return;
          }
          logger.info("tick skipped: the previous run is still going", {
            schedule: definition.name,
            tick: message.scheduledTime,
            runId: state.lastRunId,
          });
          return;
        }
        const { runId, created } = await runtime.engine.start(
          definition.workflow,
          definition.options.args ?? [],
          { idempotencyKey: tickKey(definition.name, tick) },
        );
        // The latest of the ticks that started a run: a held tick may start after a later one's message.
        const lastFiredTick = Math.max(state.lastFiredTick ?? tick, tick);
        await store.update(definition.name, { lastRunId: runId, lastFiredTick }, [
          ...held(state, tick),
          "lastError",
        ]);
        logger.info(
          created ? "schedule tick started a run" : "schedule tick delivered again: its run exists",
          {
            schedule: definition.name,
            tick: message.scheduledTime,
            runId,
            lag: now - tick,
          },
        );
      } catch (error) {
        // As on every backend: logged with the schedule; a start that can only fail again is given up (kept
        // as lastError, the message deleted: no redeliveries into the DLQ), another fails the record so
        // that SQS delivers the tick again.
        const { failure, givenUp } = startFailed(definition, error, now, tick, {
          retried:
            "SQS delivers the tick again after the step queue's visibility timeout (after maxReceiveCount receives, it is in the step DLQ).",
          apply: "deploy",
        });
        if (!givenUp) throw error;
        await store.update(definition.name, { lastError: failure }, held(state, tick));
      }
    },
  };
}

/** A schedule's declaration as its state keeps it on AWS (see `ScheduleDeclaration.everyFrom`). */
function awsDeclarationOf(definition: ScheduleDefinition): ScheduleDeclaration {
  const declaration = declarationOf(definition);
  return declaration.everyMs !== undefined && declaration.startAt === undefined
    ? { ...declaration, everyFrom: "creation" }
    : declaration;
}

/** A handled tick's held place in its schedule's state, to remove (`overlap: "buffer-one"`). */
function held(state: AwsScheduleState | undefined, tick: number): "bufferedTick"[] {
  return state?.bufferedTick === tick ? ["bufferedTick"] : [];
}

/** An AccessDeniedException of the reconcile means the construct was deployed without `schedules: true`. */
function withPermissionHint(error: unknown): unknown {
  if ((error as { name?: unknown } | undefined)?.name !== "AccessDeniedException") return error;
  return new ConfigurationError(
    `The sweeper may not manage the EventBridge schedules (${(error as Error).message}). Set schedules: true on the DurableWorkflows construct (or grant the sweeper's role scheduler:CreateSchedule, UpdateSchedule and DeleteSchedule on <group>/schedule.*, and iam:PassRole of the scheduler role).`,
    { cause: error },
  );
}

async function previousRunning(runtime: AwsRuntime, state: AwsScheduleState): Promise<boolean> {
  if (state.lastRunId === undefined) return false;
  const run = await runtime.store.getRun(state.lastRunId);
  return run !== undefined && !FINISHED_STATUSES.has(run.status);
}

function scheduleStoreOf(runtime: { clients: { dynamodb: DynamoDBClient }; config: { tableName: string } }) {
  return new DynamoDBScheduleStore({ client: runtime.clients.dynamodb, tableName: runtime.config.tableName });
}

function targetOf(runtime: AwsRuntime): RecurringScheduleTarget {
  const { config } = runtime;
  return {
    stepQueueArn: config.stepQueueArn,
    schedulerRoleArn: config.schedulerRoleArn,
    scheduleGroup: config.scheduleGroup,
    timerDeadLetterQueueArn: config.timerDeadLetterQueueArn,
  };
}

/** A schedule as the AWS client lists it. */
export interface AwsScheduleInfo {
  name: string;
  workflow: string;
  paused: boolean;
  /** The last tick that started a run; absent until one has (a tick skipped or given up is not one). */
  lastTick?: Date;
  /** The run started last, by a tick or by `triggerSchedule`. */
  lastRunId?: string;
  /** Why the last tick that could not start its run failed, until a later tick starts one. */
  lastError?: ScheduleFailure;
}

/** What the client needs to manage schedules: the table, the schedule group, and the clients. */
export interface ScheduleControlOptions {
  dynamodb: DynamoDBClient;
  /** EventBridge Scheduler, loaded on first use. */
  scheduler: SchedulerConnection;
  tableName: string;
  scheduleGroup: string;
  /** Starts a run (the client's `start`). */
  start(workflow: string, args: unknown[], idempotencyKey: string): Promise<string>;
  now(): number;
}

/** Pause, resume, trigger, delete and list the schedules of a deployment (the client's methods). */
export function scheduleControl(options: ScheduleControlOptions) {
  const store = new DynamoDBScheduleStore({ client: options.dynamodb, tableName: options.tableName });
  const schedules = new EventBridgeSchedules(options.scheduler, options.scheduleGroup);
  const stateOf = async (name: string): Promise<AwsScheduleState> => {
    const state = await store.get(name);
    if (!state)
      throw new ConfigurationError(
        `No schedule named "${name}": declare it with awsSchedules([...]) and deploy (the sweeper creates it).`,
      );
    return state;
  };
  return {
    async listSchedules(): Promise<AwsScheduleInfo[]> {
      return (await store.list()).map((state) => ({
        name: state.name,
        workflow: state.workflow,
        paused: state.paused,
        ...optional("lastTick", dateOf(state.lastFiredTick)),
        ...optional("lastRunId", state.lastRunId),
        ...optional("lastError", state.lastError && failureOf(state.lastError)),
      }));
    },
    async pauseSchedule(name: string): Promise<void> {
      await stateOf(name);
      await schedules.setEnabled(name, false);
      await store.update(name, { paused: true });
    },
    async resumeSchedule(name: string): Promise<void> {
      await stateOf(name);
      await schedules.setEnabled(name, true);
      await store.update(name, { paused: false }, ["bufferedTick"]);
    },
    async triggerSchedule(name: string): Promise<{ runId: string }> {
      const state = await stateOf(name);
      const runId = await options.start(state.workflow, state.args, triggerKey(name, options.now()));
      await store.update(name, { lastRunId: runId });
      return { runId };
    },
    async deleteSchedule(name: string): Promise<void> {
      await stateOf(name);
      await schedules.delete(name);
      await store.delete(name);
    },
  };
}
