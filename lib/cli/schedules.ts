import { join } from "node:path";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { optional } from "../core/optional.ts";
import { clean, formatSpan, formatTime, renderTable } from "../inspect/format.ts";
import type { ScheduleDeclaration, ScheduleState, ScheduleStore } from "../ports/schedule-store.ts";
import { triggerKey } from "../schedules/schedule.ts";
import { storedFireTimes } from "../schedules/scheduler.ts";
import { dateOf, failureOf } from "../schedules/start-failure.ts";
import { assertFileData, type Backend } from "./backend.ts";
import { dynamoDBClient, loadAwsMode, loadRedisMode } from "./backend-modules.ts";
import { ActionNotAvailableError, EXIT, UsageError } from "./errors.ts";
import type { Output } from "./runs.ts";

/** A backend's schedule store, and how to let go of it. */
export interface OpenedSchedules {
  store: ScheduleStore;
  /** On DynamoDB: the client the store reads with (the EventBridge side of a change needs it too). */
  dynamodb?: DynamoDBClient;
  close(): Promise<void>;
}

/**
 * The schedule state of a backend: `<dir>/schedules.json`, the Redis hash of the prefix, or the table's
 * schedule items (read only here: on AWS the EventBridge schedules hold the pause; use the client).
 * @throws BackendUnavailableError for a directory that does not exist
 */
export async function openSchedules(backend: Backend): Promise<OpenedSchedules> {
  switch (backend.kind) {
    case "file": {
      assertFileData(backend);
      const { FileScheduleStore } = await import("../adapters/file/file-schedule-store.ts");
      return { store: new FileScheduleStore(join(backend.dir, "schedules.json")), close: async () => {} };
    }
    case "redis": {
      const { RedisStorage, RedisScheduleStore } = await loadRedisMode();
      const storage = new RedisStorage({ redis: backend.url, prefix: backend.prefix });
      return {
        store: new RedisScheduleStore(storage.client, backend.prefix),
        close: () => storage.close(),
      };
    }
    case "dynamodb": {
      const { DynamoDBScheduleStore } = await loadAwsMode();
      const client = await dynamoDBClient(backend);
      return {
        store: new DynamoDBScheduleStore({ client, tableName: backend.table }),
        dynamodb: client,
        close: async () => client.destroy(),
      };
    }
  }
}

export type ScheduleAction = "pause" | "resume" | "trigger" | "delete";

/**
 * On AWS a schedule's pause is its EventBridge schedule's state: pause, resume and delete change the
 * schedule in the kit's group (`TSWORKFLOW_SCHEDULE_GROUP`) and the table, as the client does.
 */
async function changeAwsSchedule(
  backend: Extract<Backend, { kind: "dynamodb" }>,
  opened: OpenedSchedules,
  action: ScheduleAction,
  name: string,
  io: Output & { env: Record<string, string | undefined> },
): Promise<number> {
  if (action === "trigger")
    throw new ActionNotAvailableError(
      `On AWS a run starts on the deployment's queues: trigger it with createClient().triggerSchedule("${name}") from tsworkflow/aws.`,
    );
  const group = io.env.TSWORKFLOW_SCHEDULE_GROUP;
  if (!group)
    throw new UsageError(
      `Changing an AWS schedule needs its EventBridge schedule group: set TSWORKFLOW_SCHEDULE_GROUP (the construct's ScheduleGroupName output).`,
    );
  const [{ SchedulerConnection }, { scheduleControl }] = await Promise.all([
    import("../adapters/aws/scheduler-connection.ts"),
    import("../aws/schedules.ts"),
  ]);
  const scheduler = new SchedulerConnection({ clientConfig: { region: backend.region } });
  try {
    // Loads the SDK now: a missing @aws-sdk/client-scheduler is reported before anything changes.
    await scheduler.session();
    const control = scheduleControl({
      dynamodb: opened.dynamodb as DynamoDBClient,
      scheduler,
      tableName: backend.table,
      scheduleGroup: group,
      start: () => Promise.reject(new ActionNotAvailableError("The CLI starts no run on AWS.")),
      now: io.now,
    });
    const known = (await opened.store.list()).map((entry) => entry.name);
    if (!known.includes(name))
      throw new UsageError(
        `No schedule named "${name}"${known.length > 0 ? `: the schedules are ${known.join(", ")}` : ""}.`,
      );
    if (action === "pause") await control.pauseSchedule(name);
    else if (action === "resume") await control.resumeSchedule(name);
    else await control.deleteSchedule(name);
  } finally {
    scheduler.close();
  }
  io.out(`Schedule ${io.style.bold(name)}: ${action} done (EventBridge schedule and table).\n`);
  return EXIT.ok;
}

/**
 * When a schedule ticks, as `schedules list` and the dashboard show it: `0 9 * * * (UTC)`, `every 1h`,
 * `every 30s` (whole seconds as declared, not the `1.00s` of a measured span).
 */
export function scheduleWhen(declaration: ScheduleDeclaration | undefined): string {
  if (declaration?.cron) return `${declaration.cron} (${declaration.timezone ?? "UTC"})`;
  const ms = declaration?.everyMs;
  if (!ms) return "-";
  return `every ${ms < 60_000 && ms % 1000 === 0 ? `${ms / 1000}s` : formatSpan(ms)}`;
}

/**
 * A schedule's state as `schedules list --json` gives it: its times as ISO strings, as `listSchedules()` gives
 * them as Dates; `lastTick` is the last tick that started a run (absent until one has), not the state's
 * internal `lastTick`, after which ticks are due.
 */
function scheduleJson(state: ScheduleState, nextFireTimes: Date[], problem: string | undefined) {
  const { lastTick: _dueAfter, lastFiredTick, bufferedTick, triggerRequestedAt, lastError, ...rest } = state;
  return {
    ...rest,
    ...optional("lastTick", dateOf(lastFiredTick)),
    ...optional("bufferedTick", dateOf(bufferedTick)),
    ...optional("triggerRequestedAt", dateOf(triggerRequestedAt)),
    ...optional("lastError", lastError && failureOf(lastError)),
    nextFireTimes,
    ...optional("problem", problem),
  };
}

/**
 * `schedules list`: each schedule's state, last run and next fire times (from its stored declaration), then
 * what went wrong with any of them: its last failed start, or a stored declaration that gives no fire times.
 */
export async function listSchedulesCommand(
  store: ScheduleStore,
  options: { json?: boolean },
  io: Output,
): Promise<number> {
  const now = io.now();
  const entries = (await store.list())
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((state) => ({ state, ...storedFireTimes(state, now, 3) }));
  if (options.json) {
    const json = entries.map(({ state, times, problem }) => scheduleJson(state, times, problem));
    io.out(`${JSON.stringify(json, null, 2)}\n`);
    return EXIT.ok;
  }
  if (entries.length === 0) {
    io.out(
      `${io.style.dim("No schedules: a runtime declares them when it starts (its schedules option).")}\n`,
    );
    return EXIT.ok;
  }
  const rows = entries.map(({ state, times }) => {
    const declaration = state.declaration;
    return [
      clean(state.name),
      // AWS schedule state names its workflow itself (see DynamoDBScheduleStore).
      clean(declaration?.workflow ?? (state as { workflow?: string }).workflow ?? "-"),
      clean(scheduleWhen(declaration)),
      state.paused
        ? io.style.yellow("paused")
        : state.lastError
          ? io.style.red(state.lastError.retryAt === undefined ? "failing" : "retrying")
          : io.style.green("active"),
      state.lastFiredTick === undefined ? "-" : formatTime(state.lastFiredTick),
      state.lastRunId ?? "-",
      times.map((time) => formatTime(time.getTime())).join(", ") || "-",
    ];
  });
  io.out(
    `${renderTable(["NAME", "WORKFLOW", "WHEN", "STATE", "LAST TICK (UTC)", "LAST RUN", "NEXT (UTC)"], rows, io.style)}\n`,
  );
  for (const { state, problem } of entries) {
    const error = state.lastError;
    if (error) {
      const what = error.tick === undefined ? "a trigger" : `the tick of ${formatTime(error.tick)}`;
      const then = error.retryAt === undefined ? "given up" : `tried again from ${formatTime(error.retryAt)}`;
      io.out(
        `${io.style.red(clean(state.name))}: ${what} could not start (${formatTime(error.at)}, ${then}): ${clean(error.message)}\n`,
      );
    }
    if (problem) io.out(`${io.style.red(clean(state.name))}: no fire times: ${clean(problem)}\n`);
  }
  return EXIT.ok;
}

/**
 * `schedules pause|resume|trigger|delete <name>`: changes the stored state, which every process firing the
 * schedule reads at least once a minute. Resume counts from now (ticks that fell while paused are not caught
 * up); trigger asks that process for one run now, outside the ticks.
 */
export async function changeScheduleCommand(
  backend: Backend,
  opened: OpenedSchedules,
  action: ScheduleAction,
  name: string,
  io: Output & { env: Record<string, string | undefined> },
): Promise<number> {
  if (backend.kind === "dynamodb") return changeAwsSchedule(backend, opened, action, name, io);
  const { store } = opened;
  const state = await store.get(name);
  if (!state) {
    const known = (await store.list()).map((entry) => entry.name);
    throw new UsageError(
      `No schedule named "${name}"${known.length > 0 ? `: the schedules are ${known.join(", ")}` : ": none is stored yet (a runtime stores them when it starts)"}.`,
    );
  }
  if (action === "trigger") {
    // One time for both: the runtime keys the run by the stored time, which the message must name.
    const requestedAt = io.now();
    await store.put({ ...state, triggerRequestedAt: requestedAt });
    io.out(
      `Trigger of schedule ${io.style.bold(name)} stored: the runtime that fires it starts a run within a minute (key ${triggerKey(name, requestedAt)}).\n`,
    );
  } else if (action === "delete") {
    await store.delete(name);
    io.out(
      `Schedule ${io.style.bold(name)} deleted: no tick fires until a runtime that declares it starts again.\n`,
    );
  } else if (action === "pause") {
    await store.put({ ...state, paused: true });
    io.out(
      `Schedule ${io.style.bold(name)} is ${io.style.yellow("paused")}: no tick fires until it is resumed.\n`,
    );
  } else {
    await store.put({ ...state, paused: false, lastTick: io.now() });
    io.out(`Schedule ${io.style.bold(name)} is ${io.style.green("active")} again, from now.\n`);
  }
  return EXIT.ok;
}
