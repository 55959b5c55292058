import { configureLogging, MAX_PAYLOAD_BYTES, step, workflow } from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { eventTuples } from "./support/manual-engine.ts";

beforeAll(() => {
  configureLogging({ level: "silent" });
});

const cyclic = () => {
  const node: { name: string; self?: unknown } = { name: "loop" };
  node.self = node;
  return node;
};

let calls = 0;
let produce: () => unknown = () => null;
const producer = step("ser_producer", async () => {
  calls += 1;
  return produce();
});
const producing = workflow("ser_producing", async () => producer());

async function runProducing(value: () => unknown) {
  calls = 0;
  produce = value;
  const storage = new MemoryStorage();
  const runId = await startLocal(producing, [], { storage, timeSkipping: true });
  return { run: await storage.getRun(runId), events: await storage.getEvents(runId) };
}

describe("step results that the log cannot hold", () => {
  it.each([
    ["a function", () => () => 1, "value is a function"],
    ["a function in an object", () => ({ callback: () => 1 }), "value.callback is a function"],
    ["a BigInt", () => ({ total: 10n }), "value.total is a BigInt (10n)"],
    ["a circular reference", cyclic, "value.self is a circular reference"],
    ["undefined in an array", () => [1, undefined, 3], "value[1] is undefined"],
    ["a Map", () => ({ lookup: new Map([["a", 1]]) }), "value.lookup is a Map"],
    ["a Set deep inside", () => ({ a: [{ b: new Set([1]) }] }), "value.a[0].b is a Set"],
    ["NaN", () => ({ ratio: Number.NaN }), "value.ratio is NaN"],
  ])("fails the step at once with NonSerializableError when it returns %s", async (_what, value, path) => {
    // Prepare
    // Act
    const { run, events } = await runProducing(value);
    // Assess
    expect(calls).toBe(1);
    expect(eventTuples(events)).toEqual([
      ["workflow_started"],
      ["step_started", "ser_producer#0", 1],
      ["step_failed", "ser_producer#0", 1],
      ["workflow_failed"],
    ]);
    expect(run?.status).toBe("failed");
    expect(run?.error?.name).toBe("NonSerializableError");
    expect(run?.error?.message).toContain('The result of step "ser_producer" (ser_producer#0)');
    expect(run?.error?.message).toContain(path);
  });

  it("fails the step at once with PayloadTooLargeError when it returns 300 KB", async () => {
    // Prepare
    const big = () => ({ blob: "x".repeat(300 * 1024) });
    // Act
    const { run, events } = await runProducing(big);
    // Assess
    expect(calls).toBe(1);
    expect(events.filter((e) => e.type === "step_retrying")).toEqual([]);
    expect(run?.status).toBe("failed");
    expect(run?.error?.name).toBe("PayloadTooLargeError");
    expect(run?.error?.message).toContain(`over the limit of ${MAX_PAYLOAD_BYTES} bytes`);
  });

  it("keeps a result just under the limit", async () => {
    // Prepare
    const fits = () => ({ blob: "x".repeat(MAX_PAYLOAD_BYTES - 100) });
    // Act
    const { run } = await runProducing(fits);
    // Assess
    expect(run?.status).toBe("completed");
  });

  it("turns Dates into ISO strings and drops undefined properties, as the log gives them back", async () => {
    // Prepare
    const at = new Date("2030-05-06T07:08:09.000Z");
    // Act
    const { run } = await runProducing(() => ({ at, gone: undefined, kept: null }));
    // Assess
    expect(run?.status).toBe("completed");
    expect(run?.result).toEqual({ at: "2030-05-06T07:08:09.000Z", kept: null });
  });

  it("returns null for a step that returns undefined", async () => {
    // Prepare
    // Act
    const { run } = await runProducing(() => undefined);
    // Assess
    expect(run?.status).toBe("completed");
    expect(run?.result).toBeNull();
  });
});

describe("values passed around in a workflow that the log cannot hold", () => {
  it("fails the workflow when a step is called with a non-serializable argument", async () => {
    // Prepare
    const consume = step("ser_consume", async (value: unknown) => String(value));
    const passing = workflow("ser_passing", async () => consume({ when: 5n }));
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(passing, [], { storage });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("failed");
    expect(run?.error?.name).toBe("NonSerializableError");
    expect(run?.error?.message).toContain('The input of step "ser_consume"');
    expect((await storage.getEvents(runId)).filter((e) => e.type === "step_started")).toEqual([]);
  });

  it("fails the workflow when it returns a value the log cannot hold", async () => {
    // Prepare
    const mapping = workflow("ser_returns_map", async () => new Map([["a", 1]]));
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(mapping, [], { storage });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("failed");
    expect(run?.error?.name).toBe("NonSerializableError");
    expect(run?.error?.message).toContain('The result of workflow "ser_returns_map"');
  });
});

/** An array nested `levels` deep: [[[...]]]. */
function nested(levels: number): unknown {
  let value: unknown = "bottom";
  for (let level = 0; level < levels; level += 1) value = [value];
  return value;
}

describe("values nested deeper than a JSON stack can go", () => {
  it("fails a step that returns a result nested 100,000 levels deep at once with NonSerializableError", async () => {
    // Prepare
    // Act
    const { run, events } = await runProducing(() => nested(100_000));
    // Assess
    expect(calls).toBe(1);
    expect(events.filter((e) => e.type === "step_retrying")).toEqual([]);
    expect(run?.status).toBe("failed");
    expect(run?.error).toMatchObject({ name: "NonSerializableError", code: "NOT_SERIALIZABLE" });
    expect(run?.error?.message).toContain("nested more than 1000 levels deep");
  });

  it("refuses a workflow input nested 100,000 levels deep with NonSerializableError, storing nothing", async () => {
    // Prepare
    const takesAnything = workflow("ser_takes_anything", async (value: unknown) => value);
    const storage = new MemoryStorage();
    // Act
    const act = startLocal(takesAnything, [nested(100_000)], { storage });
    // Assess
    await expect(act).rejects.toMatchObject({ name: "NonSerializableError", code: "NOT_SERIALIZABLE" });
    expect((await storage.listRuns()).runs).toEqual([]);
  });

  it("keeps a value nested 900 levels deep", async () => {
    // Prepare
    // Act
    const { run } = await runProducing(() => nested(900));
    // Assess
    expect(run?.status).toBe("completed");
    expect(run?.result).toEqual(nested(900));
  });
});
