import { existsSync } from "node:fs";
import { join } from "node:path";
import { clean, formatTime, renderTable } from "../inspect/format.ts";
import type { ScheduleState, ScheduleStore } from "../ports/schedule-store.ts";
import { nextFireTimes } from "../schedules/scheduler.ts";
import { type Backend, dynamoDBClient, loadAwsMode, loadRedisMode } from "./backend.ts";
import { ActionNotAvailableError, BackendUnavailableError, EXIT, UsageError } from "./errors.ts";
import type { Output } from "./runs.ts";

/** A backend's schedule store, and how to let go of it. */
export interface OpenedSchedules {
  store: ScheduleStore;
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
      if (!existsSync(backend.dir))
        throw new BackendUnavailableError(
          `No tsworkflow data in ${backend.dir}: the directory does not exist. Pass --dir <the app's directory>.`,
        );
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
        close: async () => client.destroy(),
      };
    }
  }
}

/** `schedules list`: each schedule's state, last run and next fire times (from its stored declaration). */
export async function listSchedulesCommand(
  store: ScheduleStore,
  options: { json?: boolean },
  io: Output,
): Promise<number> {
  const states = (await store.list()).sort((a, b) => a.name.localeCompare(b.name));
  const now = io.now();
  const next = (state: ScheduleState) =>
    state.paused || !state.declaration
      ? []
      : nextFireTimes(state.declaration, Math.max(state.lastTick, now), 3);
  if (options.json) {
    const entries = states.map((state) => ({ ...state, nextFireTimes: next(state) }));
    io.out(`${JSON.stringify(entries, null, 2)}\n`);
    return EXIT.ok;
  }
  if (states.length === 0) {
    io.out(
      `${io.style.dim("No schedules: a runtime declares them when it starts (its schedules option).")}\n`,
    );
    return EXIT.ok;
  }
  const rows = states.map((state) => {
    const declaration = state.declaration;
    const when = declaration?.cron
      ? `${declaration.cron} (${declaration.timezone ?? "UTC"})`
      : declaration?.everyMs
        ? `every ${declaration.everyMs / 1000}s`
        : "-";
    return [
      clean(state.name),
      clean(declaration?.workflow ?? "-"),
      clean(when),
      state.paused ? io.style.yellow("paused") : io.style.green("active"),
      formatTime(state.lastTick),
      state.lastRunId ?? "-",
      next(state)
        .map((time) => formatTime(time.getTime()))
        .join(", ") || "-",
    ];
  });
  io.out(
    `${renderTable(["NAME", "WORKFLOW", "WHEN", "STATE", "LAST TICK (UTC)", "LAST RUN", "NEXT (UTC)"], rows, io.style)}\n`,
  );
  return EXIT.ok;
}

/**
 * `schedules pause|resume|trigger|delete <name>`: changes the stored state, which every process firing the
 * schedule reads at least once a minute. Resume counts from now (ticks that fell while paused are not caught
 * up); trigger asks that process for one run now, outside the ticks.
 */
export async function changeScheduleCommand(
  backend: Backend,
  store: ScheduleStore,
  action: "pause" | "resume" | "trigger" | "delete",
  name: string,
  io: Output,
): Promise<number> {
  if (backend.kind === "dynamodb")
    throw new ActionNotAvailableError(
      `On AWS a schedule's pause lives in its EventBridge schedule: ${action} it with createClient().${action}Schedule("${name}") from tsworkflow/aws (with TSWORKFLOW_SCHEDULE_GROUP set).`,
    );
  const state = await store.get(name);
  if (!state) {
    const known = (await store.list()).map((entry) => entry.name);
    throw new UsageError(
      `No schedule named "${name}"${known.length > 0 ? `: the schedules are ${known.join(", ")}` : ": none is stored yet (a runtime stores them when it starts)"}.`,
    );
  }
  if (action === "trigger") {
    await store.put({ ...state, triggerRequestedAt: io.now() });
    io.out(
      `Trigger of schedule ${io.style.bold(name)} stored: the runtime that fires it starts a run within a minute (key schedule:${name}:manual:${new Date(io.now()).toISOString()}).\n`,
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
