import { describe, expect, it } from "vitest";
import {
  type AwsScheduleState,
  DynamoDBScheduleStore,
} from "../../lib/adapters/aws/dynamodb-schedule-store.ts";
import { useDynamoDBLocal } from "./harness/dynamodb-tables.ts";

const dynamo = useDynamoDBLocal();

async function freshStore(): Promise<DynamoDBScheduleStore> {
  const tableName = await dynamo.freshTable("schedule-store");
  return new DynamoDBScheduleStore({ client: dynamo.client(), tableName });
}

const state = (name: string, extra: Partial<AwsScheduleState> = {}): AwsScheduleState => ({
  name,
  paused: false,
  lastTick: Date.UTC(2026, 0, 1),
  workflow: "daily_report",
  args: [{ team: "sales", "a.b": [1, null] }],
  fingerprint: "f1",
  ...extra,
});

/** A declaration whose keys are not in alphabetical order, as the sweep writes them. */
const declaration = { workflow: "daily_report", cron: "0 9 * * MON", timezone: "Europe/Paris", startAt: 1 };

describe("DynamoDBScheduleStore", () => {
  it("keeps each schedule's state (its declaration too), lists them all and deletes one", async () => {
    // Prepare
    const store = await freshStore();
    // Act
    await store.put(state("a"));
    await store.put(state("b:weekly", { lastRunId: "run_1", bufferedTick: 42, declaration }));
    await store.put(state("c"));
    await store.delete("c");
    // Assess
    expect(await store.get("a")).toEqual(state("a"));
    expect(await store.get("c")).toBeUndefined();
    // In order: the sweep compares the stored declaration with the code's as JSON text.
    expect(JSON.stringify((await store.get("b:weekly"))?.declaration)).toBe(JSON.stringify(declaration));
    expect((await store.list()).sort((x, y) => x.name.localeCompare(y.name))).toEqual([
      state("a"),
      state("b:weekly", { lastRunId: "run_1", bufferedTick: 42, declaration }),
    ]);
  });

  it("updates fields one by one, so that a tick's update and a pause do not undo each other", async () => {
    // Prepare
    const store = await freshStore();
    await store.put(state("a", { bufferedTick: 7 }));
    // Act: a pause and a tick read the same state, then each writes its own fields.
    await Promise.all([
      store.update("a", { paused: true }),
      store.update("a", { lastRunId: "run_2", lastTick: 99 }, ["bufferedTick"]),
    ]);
    // Assess
    expect(await store.get("a")).toEqual({ ...state("a"), paused: true, lastRunId: "run_2", lastTick: 99 });
  });

  it("does not create a schedule's state by updating one that does not exist", async () => {
    const store = await freshStore();
    expect(await store.update("missing", { paused: true })).toBe(false);
    expect(await store.list()).toEqual([]);
  });

  it("remembers the hash of the declarations the last reconcile applied", async () => {
    const store = await freshStore();
    expect(await store.declared()).toBeUndefined();
    await store.setDeclared("h1");
    await store.put(state("a"));
    expect(await store.declared()).toBe("h1");
    expect((await store.list()).map((entry) => entry.name)).toEqual(["a"]);
  });
});
