import { configureLogging, type RequireJsonParameters, runChild, step, workflow } from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { beforeAll, describe, expect, expectTypeOf, it } from "vitest";

/**
 * A step's and a workflow's parameters are typed as what survives the JSON round trip that their input makes
 * through the log: a definition whose parameter would arrive as something else (a Date as its ISO string) or
 * be refused at run time (a Map) does not compile. The `@ts-expect-error` lines fail `tsc` when it does.
 */

beforeAll(() => {
  configureLogging({ level: "silent" });
});

/** Runs `body` as a workflow (time skipped) and gives back the finished run. */
async function runWorkflow(name: string, body: () => Promise<unknown>) {
  const storage = new MemoryStorage();
  const runId = await startLocal(
    workflow(name, async () => body()),
    [],
    { storage, timeSkipping: true },
  );
  return storage.getRun(runId);
}

interface Category {
  name: string;
  parent: Category | null;
}

interface Order {
  id: string;
  total: number;
  coupon?: string;
  note: string | undefined;
  lines: { sku: string; qty: number }[];
  category: Category;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

type OrderId = string & { readonly brand: "OrderId" };

/** The compile error's message: a definition's function must be of this string type, which no function is. */
type Message<Kind extends string, Hint extends string> = `${Kind} parameters must survive JSON: ${Hint}`;

describe("step and workflow parameters that survive JSON", () => {
  it("compile, and reach the step as they were passed: primitives, literals, objects, interfaces, arrays, tuples, optional ones, unions, unknown and any", async () => {
    // Prepare
    const echo = step(
      "jp_echo",
      async (
        order: Order,
        kind: "online" | "shop",
        ids: readonly OrderId[],
        pair: [string, number?],
        meta: Json,
        flags: { paid: boolean; refunded: boolean | null },
        raw: unknown,
        // biome-ignore lint/suspicious/noExplicitAny: the case under test
        loose: any,
        ...rest: number[]
      ) => [order, kind, ids, pair, meta, flags, raw, loose, ...rest],
    );
    const order: Order = {
      id: "o-1",
      total: 10,
      note: undefined,
      lines: [{ sku: "a", qty: 2 }],
      category: { name: "shoes", parent: { name: "clothes", parent: null } },
    };
    const args: Parameters<typeof echo> = [
      order,
      "online",
      ["o-1" as OrderId],
      ["a"],
      { tags: ["x"], nested: { n: 1 } },
      { paid: true, refunded: null },
      { any: "thing" },
      [1],
      1,
      2,
    ];
    // Act
    const run = await runWorkflow("jp_echoing", () => echo(...args));
    // Assess
    expectTypeOf(echo).parameters.toEqualTypeOf<
      [
        Order,
        "online" | "shop",
        readonly OrderId[],
        [string, number?],
        Json,
        { paid: boolean; refunded: boolean | null },
        unknown,
        // biome-ignore lint/suspicious/noExplicitAny: the case under test
        any,
        ...number[],
      ]
    >();
    expectTypeOf<RequireJsonParameters<"step", Parameters<typeof echo>>>().toBeUnknown();
    expect(run?.status).toBe("completed");
    const { note: _dropped, ...orderAsLogged } = order; // an undefined property is dropped
    expect(run?.result).toStrictEqual([orderAsLogged, ...args.slice(1)]);
  });

  it("compile for a workflow too, and a step or workflow without parameters", () => {
    // Prepare
    const noParameters = step("jp_no_parameters", async () => 1);
    // Act
    const ordering = workflow("jp_ordering", async (order: Order, at: string | null) => `${order.id} ${at}`);
    // Assess
    expectTypeOf(noParameters).parameters.toEqualTypeOf<[]>();
    expectTypeOf(ordering.fn).parameters.toEqualTypeOf<[Order, string | null]>();
  });
});

class Money {
  constructor(readonly cents: number) {}
  plus(other: Money): Money {
    return new Money(this.cents + other.cents);
  }
}

describe("step and workflow parameters that do not survive JSON", () => {
  it("do not compile, with a message that says what to use instead", () => {
    // Prepare
    // Act
    type Say<Parameter> = RequireJsonParameters<"step", [Parameter]>;
    // Assess
    expectTypeOf<Say<Date>>().toEqualTypeOf<Message<"step", "use string for a Date">>();
    expectTypeOf<Say<Map<string, number>>>().toEqualTypeOf<
      Message<"step", "use an object or an array of entries for a Map">
    >();
    expectTypeOf<Say<Set<string>>>().toEqualTypeOf<Message<"step", "use an array for a Set">>();
    expectTypeOf<Say<bigint>>().toEqualTypeOf<Message<"step", "use string for a bigint">>();
    expectTypeOf<Say<symbol>>().toEqualTypeOf<Message<"step", "use string for a symbol">>();
    expectTypeOf<Say<(id: string) => void>>().toEqualTypeOf<Message<"step", "pass data, not a function">>();
    expectTypeOf<Say<Money>>().toEqualTypeOf<Message<"step", "use a plain object for a class instance">>();
    expectTypeOf<Say<Promise<string>>>().toEqualTypeOf<
      Message<"step", "use a plain object for a class instance">
    >();
    expectTypeOf<Say<undefined>>().toEqualTypeOf<Message<"step", "use null for undefined">>();
    expectTypeOf<RequireJsonParameters<"workflow", [string, Date]>>().toEqualTypeOf<
      Message<"workflow", "use string for a Date">
    >();
    expectTypeOf<RequireJsonParameters<"step", [Date, Set<number>]>>().toEqualTypeOf<
      Message<"step", "use string for a Date" | "use an array for a Set">
    >();
  });

  it("do not compile deep inside either: in properties, optional properties, array and tuple elements and unions", () => {
    // Prepare
    type Say<Parameter> = RequireJsonParameters<"step", [Parameter]>;
    interface Renewal {
      plan: string;
      history: { at: Date }[];
    }
    const key = Symbol("key");
    // Act
    // Assess
    expectTypeOf<Say<Renewal>>().toEqualTypeOf<Message<"step", "use string for a Date">>();
    expectTypeOf<Say<{ id: string; lookup?: Map<string, number> }>>().toEqualTypeOf<
      Message<"step", "use an object or an array of entries for a Map">
    >();
    expectTypeOf<Say<[string, bigint?]>>().toEqualTypeOf<Message<"step", "use string for a bigint">>();
    expectTypeOf<Say<string | Date>>().toEqualTypeOf<Message<"step", "use string for a Date">>();
    expectTypeOf<Say<{ onDone?: () => void }>>().toEqualTypeOf<
      Message<"step", "pass data, not a function">
    >();
    expectTypeOf<Say<(string | undefined)[]>>().toEqualTypeOf<Message<"step", "use null for undefined">>();
    expectTypeOf<Say<{ [key]: string }>>().toEqualTypeOf<
      Message<"step", "use a string key for a symbol key">
    >();
    expectTypeOf<Say<Record<string, Date>>>().toEqualTypeOf<Message<"step", "use string for a Date">>();
  });

  it("make step() and workflow() definitions compile errors", () => {
    // Prepare
    // Act
    // @ts-expect-error step parameters must survive JSON: use string for a Date
    const dated = step("jp_refused_date", async (due: Date) => due.getTime());
    // @ts-expect-error step parameters must survive JSON: use string for a Date (deep inside)
    const renewing = step("jp_refused_deep", async (renewal: { plan: string; at: Date }[]) => renewal.length);
    // @ts-expect-error step parameters must survive JSON: use null for undefined
    const nothing = step("jp_refused_undefined", async (value: string | undefined) => value);
    // @ts-expect-error workflow parameters must survive JSON: use string for a Date
    const scheduling = workflow("jp_refused_workflow", async (at: Date) => at.toISOString());
    const tagging = workflow(
      "jp_refused_workflow_set",
      // @ts-expect-error workflow parameters must survive JSON: use an array for a Set
      async (tags: Set<string>, label: string) => `${label} ${tags.size}`,
    );
    // Assess
    // Call sites keep the declared types: the error is at the definition, once.
    expectTypeOf(dated).parameters.toEqualTypeOf<[Date]>();
    expectTypeOf(renewing).parameters.toEqualTypeOf<[{ plan: string; at: Date }[]]>();
    expectTypeOf(nothing).parameters.toEqualTypeOf<[string | undefined]>();
    expectTypeOf(scheduling.fn).parameters.toEqualTypeOf<[Date]>();
    expectTypeOf(tagging.fn).parameters.toEqualTypeOf<[Set<string>, string]>();
  });
});

const timings: string[] = [];

/** A function that defines steps for parameters of any type, passing the check on (as `RequireJsonParameters` shows). */
function timedStep<Args extends unknown[], Result>(
  name: string,
  fn: ((...args: Args) => Promise<Result>) & RequireJsonParameters<"step", Args>,
) {
  const timed = async (...args: Args) => {
    const started = performance.now();
    try {
      return await fn(...args);
    } finally {
      timings.push(`${name} took ${performance.now() - started} ms`);
    }
  };
  return step(name, timed as typeof fn);
}

describe("a function that defines steps for any parameters", () => {
  it("passes the check on to its callers, with the same message", async () => {
    // Prepare
    // Act
    const charge = timedStep(
      "jp_timed_charge",
      async (orderId: string, amount: number) => `${orderId} ${amount}`,
    );
    // @ts-expect-error step parameters must survive JSON: use string for a Date
    const dated = timedStep("jp_timed_dated", async (due: Date) => due.getTime());
    const run = await runWorkflow("jp_timing", () => charge("o-1", 5));
    // Assess
    expectTypeOf(charge).parameters.toEqualTypeOf<[orderId: string, amount: number]>();
    expectTypeOf(dated).parameters.toEqualTypeOf<[due: Date]>();
    expect(run?.status).toBe("completed");
    expect(run?.result).toBe("o-1 5");
    expect(timings).toEqual([expect.stringMatching(/^jp_timed_charge took /)]);
  });
});

describe("why: what a step and a workflow get at run time for such parameters", () => {
  it("gives a Date parameter its ISO string in a workflow (in a step and a child workflow), and the Date outside one", async () => {
    // Prepare
    // @ts-expect-error step parameters must survive JSON: use string for a Date
    const kindOf = step("jp_kind_of", async (due: Date) => typeof due);
    // @ts-expect-error workflow parameters must survive JSON: use string for a Date
    const childKindOf = workflow("jp_child_kind_of", async (due: Date) => typeof due);
    const due = new Date("2030-01-01T00:00:00.000Z");
    // Act
    const outside = await kindOf(due);
    const run = await runWorkflow("jp_passing_dates", async () => [
      await kindOf(due),
      await runChild(childKindOf, [due]),
    ]);
    // Assess
    expect(outside).toBe("object");
    expect(run?.status).toBe("completed");
    expect(run?.result).toEqual(["string", "string"]);
  });

  it.each([
    ["a Map", () => new Map([["a", 1]]), "value[0] is a Map"],
    ["a Set", () => new Set([1]), "value[0] is a Set"],
    ["a BigInt", () => 10n, "value[0] is a BigInt (10n)"],
    ["a symbol", () => Symbol("s"), "value[0] is a symbol"],
    ["a function", () => () => 1, "value[0] is a function"],
    ["a class instance", () => new Money(100), "value[0] is a Money"],
    ["undefined", () => undefined, "value[0] is undefined"],
  ])(
    "refuses %s passed to a step with NonSerializableError, so its type is refused too",
    async (what, value, path) => {
      // Prepare
      const name = what.replaceAll(" ", "_");
      const take = step(`jp_take_${name}`, async (_value: unknown) => "ran");
      // Act
      const run = await runWorkflow(`jp_passing_${name}`, () => take(value()));
      // Assess
      expect(run?.status).toBe("failed");
      expect(run?.error).toMatchObject({ name: "NonSerializableError" });
      expect(run?.error?.message).toContain(path);
    },
  );

  it("compiles a class instance without methods where a plain object is asked for, refuses it at run time, and takes it spread into a plain object", async () => {
    // Prepare
    class Payment {
      constructor(readonly amount: number) {}
    }
    const charge = step("jp_charge", async (payment: { amount: number }) => payment.amount);
    const payment = new Payment(5);
    // Act
    const refused = await runWorkflow("jp_charging_instance", () => charge(payment));
    const spread = await runWorkflow("jp_charging_spread", () => charge({ ...payment }));
    // Assess
    expect(refused?.status).toBe("failed");
    expect(refused?.error).toMatchObject({ name: "NonSerializableError" });
    expect(refused?.error?.message).toContain("value[0] is a Payment");
    expect(spread?.status).toBe("completed");
    expect(spread?.result).toBe(5);
  });
});
