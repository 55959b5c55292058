import {
  configureLogging,
  MAX_PAYLOAD_BYTES,
  NonSerializableError,
  type Serialized,
  step,
  workflow,
} from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { roundTrip } from "../../lib/core/serialization.ts";
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

/** The value as the log gives it back, typed by `Serialized<T>`: the type and the value are checked side by side. */
const back = <T>(value: T): Serialized<T> => roundTrip(value, "The value");

describe("Serialized<T>: values typed as the log gives them back", () => {
  it("types a Date as its ISO string, at the top and deep inside", () => {
    // Prepare
    const at = new Date("2030-01-02T03:04:05.000Z");
    // Act
    const date = back(at);
    const nested = back({ at, history: [{ at }] });
    // Assess
    expectTypeOf(date).toEqualTypeOf<string>();
    expectTypeOf(nested).toEqualTypeOf<{ at: string; history: { at: string }[] }>();
    expect(date).toBe("2030-01-02T03:04:05.000Z");
    expect(nested).toEqual({ at: "2030-01-02T03:04:05.000Z", history: [{ at: "2030-01-02T03:04:05.000Z" }] });
  });

  it("types undefined and void as null, which is what a step or workflow that returns nothing gives", () => {
    // Prepare
    const nothing = (): void => {};
    const maybe = (found: boolean): string | undefined => (found ? "found" : undefined);
    // Act
    const fromVoid = back(nothing());
    const fromUndefined = back(undefined);
    const fromMaybe = back(maybe(false));
    // Assess
    expectTypeOf(fromVoid).toEqualTypeOf<null>();
    expectTypeOf(fromUndefined).toEqualTypeOf<null>();
    expectTypeOf(fromMaybe).toEqualTypeOf<string | null>();
    expect([fromVoid, fromUndefined, fromMaybe]).toEqual([null, null, null]);
  });

  it("keeps plain objects, arrays, tuples, unions, literals and readonly arrays as they are", () => {
    // Prepare
    interface Order {
      id: string;
      total: number;
      paid: boolean;
      coupon: string | null;
      lines: { sku: string; qty: number }[];
    }
    const order: Order = { id: "o-1", total: 10, paid: true, coupon: null, lines: [{ sku: "a", qty: 2 }] };
    const pair: [string, number] = ["a", 1];
    const tags: readonly string[] = ["x", "y"];
    const outcome = { status: "shipped", trackingId: "t-1" } as
      | { status: "shipped"; trackingId: string }
      | { status: "held"; reason: string };
    // Act
    const values = back({ order, pair, tags, outcome, kind: "order" as const });
    // Assess
    expectTypeOf(values.order).toEqualTypeOf<Order>();
    expectTypeOf(values.pair).toEqualTypeOf<[string, number]>();
    expectTypeOf(values.tags).toEqualTypeOf<readonly string[]>();
    expectTypeOf(values.outcome).toEqualTypeOf<
      { status: "shipped"; trackingId: string } | { status: "held"; reason: string }
    >();
    expectTypeOf(values.kind).toEqualTypeOf<"order">();
    expect(values).toEqual({ order, pair, tags, outcome, kind: "order" });
  });

  it("makes a property that may be undefined optional, as an undefined property is dropped, and drops symbol keys", () => {
    // Prepare
    const hidden = Symbol("hidden");
    const value: { id: string; note?: string; shippedAt: Date | undefined; [hidden]: number } = {
      id: "o-1",
      shippedAt: undefined,
      [hidden]: 1,
    };
    // Act
    const result = back(value);
    // Assess
    expectTypeOf(result).toEqualTypeOf<{ id: string; note?: string; shippedAt?: string }>();
    expect(result).toEqual({ id: "o-1" });
    expect("shippedAt" in result).toBe(false);
  });

  it("keeps optional tuple elements optional and refuses undefined in an array", () => {
    // Prepare
    const short: [string, Date?] = ["a"];
    const holes: (number | undefined)[] = [1, undefined];
    // Act
    const tuple = back(short);
    const refused = () => back(holes);
    // Assess
    expectTypeOf(tuple).toEqualTypeOf<[string, string?]>();
    expectTypeOf(refused).returns.toEqualTypeOf<number[]>();
    expect(tuple).toEqual(["a"]);
    expect(refused).toThrow(NonSerializableError);
  });

  it("types what the serializer refuses as never: a Map, a Set, a function, a BigInt, a class instance with methods", () => {
    // Prepare
    class Money {
      constructor(readonly cents: number) {}
      toJSON() {
        return { cents: this.cents };
      }
    }
    const refused = {
      map: () => back(new Map([["a", 1]])),
      set: () => back(new Set([1])),
      fn: () => back(() => 1),
      bigint: () => back(10n),
      money: () => back(new Money(100)),
      plainToJson: () => back({ toJSON: () => "x" }),
    };
    // Act
    const orNull = back(null as Map<string, number> | null);
    // Assess
    expectTypeOf(refused.map).returns.toBeNever();
    expectTypeOf(refused.set).returns.toBeNever();
    expectTypeOf(refused.fn).returns.toBeNever();
    expectTypeOf(refused.bigint).returns.toBeNever();
    expectTypeOf(refused.money).returns.toBeNever();
    expectTypeOf(refused.plainToJson).returns.toBeNever();
    expectTypeOf(orNull).toEqualTypeOf<null>();
    for (const refuse of Object.values(refused)) expect(refuse).toThrow(NonSerializableError);
  });

  it("keeps an object with a refused value in a required property, that property being never", () => {
    // Prepare
    const value = { id: "o-1", lookup: new Map([["a", 1]]) };
    // Act
    const refused = () => back(value);
    // Assess
    expectTypeOf(refused).returns.toEqualTypeOf<{ id: string; lookup: never }>();
    expect(refused).toThrow("value.lookup is a Map");
  });

  it("leaves any and unknown as they are (an unknown property may be dropped), and keeps recursive types", () => {
    // Prepare
    type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
    interface Category {
      name: string;
      parent: Category | null;
    }
    interface Reply {
      // biome-ignore lint/suspicious/noExplicitAny: the case under test
      raw: any;
      parsed: unknown;
    }
    // Act
    // biome-ignore lint/suspicious/noExplicitAny: the case under test
    const anyValue = back(JSON.parse("1") as any);
    const unknownValue = back(JSON.parse("1") as unknown);
    const reply = back({ raw: 1, parsed: undefined } as Reply);
    const json = back({ a: [1, { b: null }] } as Json);
    const category = back({ name: "shoes", parent: { name: "clothes", parent: null } } as Category);
    // Assess
    expectTypeOf(anyValue).toBeAny();
    expectTypeOf(unknownValue).toBeUnknown();
    // biome-ignore lint/suspicious/noExplicitAny: the case under test
    expectTypeOf(reply).toEqualTypeOf<{ raw: any; parsed?: unknown }>();
    expectTypeOf(json).toEqualTypeOf<Json>();
    expectTypeOf(category).toEqualTypeOf<Category>();
    expect(reply).toEqual({ raw: 1 });
    expect(category.parent?.name).toBe("clothes");
  });
});
