import {
  NonSerializableError,
  PayloadTooLargeError,
  RetryableError,
  type SerializedError,
  TsWorkflowError,
} from "./errors.ts";
import { sha256 } from "./hash.ts";

/**
 * Largest step input, step result, workflow input or result, as JSON: 255 KB, so that a step task (its
 * input and a small envelope) fits in one 256 KB SQS message.
 */
export const MAX_PAYLOAD_BYTES = 255 * 1024;

function kindOf(value: unknown): string {
  if (typeof value === "bigint") return `a BigInt (${value}n)`;
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol") return "a symbol";
  if (typeof value === "number") return String(value);
  if (value === undefined) return "undefined";
  const ctor = (value as object).constructor?.name;
  return ctor ? `a ${ctor}` : "an object with no prototype";
}

/**
 * The deepest nesting of arrays and objects a value may have: deeper values would overflow the stack of
 * `JSON.stringify` (a `RangeError`), here or in whatever reads them back.
 */
export const MAX_PAYLOAD_DEPTH = 1000;

/**
 * Checks that a value survives a JSON round trip unchanged in meaning, and returns its JSON.
 * Dates are allowed and become ISO strings; `undefined` object properties are dropped. `Serialized<T>` and
 * `RequireJsonParameters` below are this function's rules as types: change them together.
 * @throws NonSerializableError naming the path of the first bad value
 * @throws PayloadTooLargeError when the JSON is over `limit` bytes
 */
export function toJson(value: unknown, what: string, limit = MAX_PAYLOAD_BYTES): string {
  const seen = new Set<object>();
  // Paths are built only for an error: building them for every value would cost more than the walk.
  const walk = (current: unknown, depth: number, path: () => string): void => {
    if (current === null || typeof current === "string" || typeof current === "boolean") return;
    if (typeof current === "number") {
      if (!Number.isFinite(current)) throw new NonSerializableError(what, path(), kindOf(current));
      return;
    }
    if (typeof current !== "object") throw new NonSerializableError(what, path(), kindOf(current));
    if (current instanceof Date) return;
    if (seen.has(current)) throw new NonSerializableError(what, path(), "a circular reference");
    if (depth >= MAX_PAYLOAD_DEPTH)
      throw new NonSerializableError(
        what,
        `${path().slice(0, 60)}...`,
        `nested more than ${MAX_PAYLOAD_DEPTH} levels deep`,
      );
    seen.add(current);
    if (Array.isArray(current)) {
      current.forEach((item, index) => {
        const at = () => `${path()}[${index}]`;
        if (item === undefined) throw new NonSerializableError(what, at(), "undefined (use null)");
        walk(item, depth + 1, at);
      });
    } else {
      const proto = Object.getPrototypeOf(current);
      if (proto !== Object.prototype && proto !== null)
        throw new NonSerializableError(what, path(), kindOf(current));
      for (const [key, item] of Object.entries(current)) {
        if (item !== undefined) walk(item, depth + 1, () => `${path()}.${key}`);
      }
    }
    seen.delete(current);
  };
  if (value === undefined) return "null";
  walk(value, 0, () => "value");
  const json = JSON.stringify(value);
  const bytes = Buffer.byteLength(json);
  if (bytes > limit) throw new PayloadTooLargeError(what, bytes, limit);
  return json;
}

/** The value as the log will give it back (a JSON round trip), so live runs and replays see the same thing. */
export function roundTrip<T>(value: T, what: string, limit = MAX_PAYLOAD_BYTES): Serialized<T> {
  return JSON.parse(toJson(value, what, limit)) as Serialized<T>;
}

/**
 * A value of type `T` as a run's log gives it back: what a step call, `runChild`, a test run's `result()` and
 * a `waitForEvent` without a schema resolve with, on the first run as on a replay (the value always makes a
 * JSON round trip). It follows the rules of the serializer:
 *
 * - strings, numbers, booleans and `null` come back as they are (literal types too);
 * - a `Date` comes back as its ISO string (`"2030-01-01T00:00:00.000Z"`);
 * - a whole value that is `undefined` (a `void` step or workflow) comes back as `null`;
 * - an object property that may be `undefined` becomes optional (an `undefined` property is dropped), and
 *   symbol keys are dropped; arrays and tuples keep their shape and `readonly`, element by element;
 * - what the serializer refuses with `NonSerializableError` is `never`: a function, a `bigint`, a symbol,
 *   `undefined` in an array, and an object with methods (a class instance, `Map`, `Set`, a `Promise`, a
 *   typed array; a `toJSON` method is not called, `Date`'s aside). So `Map<K, V> | null` comes back as
 *   `null`, and an object with a `Map` in a required property keeps its shape with that property `never`,
 *   which shows where the trouble is and makes any use of it a compile error;
 * - `any` and `unknown` stay as they are.
 *
 * Types cannot tell everything the serializer checks: an instance of a class without methods (or an
 * `Error`) is typed like the plain object it looks like, and still refused at run time, as are `NaN`,
 * `Infinity`, a cycle and an object nested more than `MAX_PAYLOAD_DEPTH` levels deep; an invalid `Date`
 * comes back as `null`.
 * @example
 * import { type Serialized, step, workflow } from "tsworkflow";
 * type Renewal = { plan: string; renewsAt: Date };
 * const renew = step("renew", async (plan: string): Promise<Renewal> => ({ plan, renewsAt: new Date("2030-01-01") }));
 * export const billing = workflow("billing", async (plan: string) => {
 *   const renewal: Serialized<Renewal> = await renew(plan);   // { plan: string; renewsAt: string }
 *   return Date.parse(renewal.renewsAt);                      // renewsAt is "2030-01-01T00:00:00.000Z"
 * });
 */
export type Serialized<T> = unknown extends T ? T : T extends void ? null : SerializedValue<T>;

/** A value inside an array or object: there `undefined` is refused (in an array) or dropped (in an object). */
type SerializedValue<T> = unknown extends T
  ? T
  : T extends Unchanged
    ? T
    : T extends Date
      ? string
      : T extends bigint | symbol | undefined | Callable
        ? never
        : T extends readonly unknown[]
          ? SerializedArray<T>
          : T extends object
            ? [MethodKeys<T>] extends [never]
              ? SerializedObject<T>
              : never
            : never;

/**
 * What comes back as it went in. A type made of these alone (a JSON type, `{ id: string; tags: string[] }`)
 * is kept as it is, so that editors show its name; an interface has no index signature, so it is mapped.
 */
type Unchanged =
  | string
  | number
  | boolean
  | null
  | readonly Unchanged[]
  | { readonly [key: string]: Unchanged; readonly [key: symbol]: never };

/**
 * Element by element. An array's element type is written as `X[]`, whose element TypeScript works out only
 * when asked: a mapped type would work it out at once, endlessly for a recursive type such as a JSON type.
 */
type SerializedArray<T extends readonly unknown[]> = number extends T["length"]
  ? T extends unknown[]
    ? SerializedValue<T[number]>[]
    : readonly SerializedValue<T[number]>[]
  : { [K in keyof T]: SerializedValue<T[K]> };

// biome-ignore lint/suspicious/noExplicitAny: any function or class, whatever it takes
type Callable = ((...args: any[]) => unknown) | (abstract new (...args: any[]) => unknown);

/**
 * The keys of `T` that always hold a function: methods, which only class instances and the like have. An
 * `any`, `unknown` or `never` property is not one.
 */
type MethodKeys<T> = {
  [K in keyof T]-?: unknown extends T[K]
    ? never
    : [T[K]] extends [never]
      ? never
      : T[K] extends Callable
        ? RequiredKey<T, K>
        : never;
}[keyof T];

// biome-ignore lint/complexity/noBannedTypes: {} is the type with no required property
type RequiredKey<T, K extends keyof T> = {} extends Pick<T, K> ? never : K;

/** Symbol keys dropped; a property that may be `undefined` (an `any` aside) becomes optional, without `undefined`. */
type SerializedObject<T> = Flatten<
  { [K in keyof T as MayBeUndefined<T[K]> extends false ? StringKey<K> : never]: SerializedValue<T[K]> } & {
    [K in keyof T as MayBeUndefined<T[K]> extends true ? StringKey<K> : never]?: SerializedValue<
      Exclude<T[K], undefined>
    >;
  }
>;

type StringKey<K> = K extends symbol ? never : K;

type MayBeUndefined<V> = 0 extends 1 & V ? false : undefined extends V ? true : false;

/** One object type out of an intersection (`& {}` too), so that editors show `{ a: string; b?: number }`. */
type Flatten<T> = { [K in keyof T]: T[K] } & {};

/**
 * `unknown` when every parameter type in `Args` survives the JSON round trip that a step's or workflow's input
 * makes (through the run's log, on the first run as on a replay); otherwise the message
 * `"<kind> parameters must survive JSON: <what to use instead>"`, which `step()` and `workflow()` intersect
 * with their function's type, so that defining one with such a parameter is a compile error saying what to do:
 *
 * - accepted: strings, numbers, booleans, `null`, literals, plain object types and interfaces (an `undefined`
 *   property is dropped, so optional properties are fine), arrays, tuples, optional parameters, unions of
 *   these, `unknown` and `any`;
 * - refused, deep inside too: a `Date` (the function would get its ISO string: take a string), `undefined`
 *   where it is not dropped (in a required parameter or tuple element, in an array: the serializer refuses
 *   it, use `null`), a `bigint`, a symbol (value or key), a function, a `Map`, a `Set` and any other object
 *   with methods (a class instance: the serializer refuses it, take a plain object).
 *
 * Types cannot tell a class instance without methods from a plain object: it compiles, and is refused at run
 * time with `NonSerializableError`. Types are checked 10 levels deep, so that the check of a recursive type (a
 * tree) ends. A function that defines steps for parameters of any type passes the check on, as below: the
 * check cannot tell whether a type parameter survives JSON.
 * @example
 * import { type RequireJsonParameters, step } from "tsworkflow";
 * export function timedStep<Args extends unknown[], Result>(
 *   name: string,
 *   fn: ((...args: Args) => Promise<Result>) & RequireJsonParameters<"step", Args>,
 * ) {
 *   const timed = async (...args: Args) => {
 *     const started = Date.now();
 *     try {
 *       return await fn(...args);
 *     } finally {
 *       console.log(`${name} took ${Date.now() - started} ms`);
 *     }
 *   };
 *   return step(name, timed as typeof fn);
 * }
 * export const charge = timedStep("charge", async (orderId: string) => `charged ${orderId}`);
 */
export type RequireJsonParameters<Kind extends string, Args extends unknown[]> = RequireJson<
  Kind,
  ElementProblems<Args, []>
>;

type RequireJson<Kind extends string, Problem> = [Problem] extends [never]
  ? unknown
  : `${Kind} parameters must survive JSON: ${Problem & string}`;

/** How deep parameter types are checked (a tuple of this length): a recursive type would recurse forever. */
type CheckedDepth = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/** What to use instead of each thing in `T` that does not survive JSON, as a union; `never` when all of it does. */
type Problems<T, Depth extends 0[]> = Depth extends CheckedDepth
  ? never
  : unknown extends T
    ? never
    : T extends Unchanged
      ? never
      : T extends Date
        ? "use string for a Date"
        : T extends undefined
          ? "use null for undefined"
          : T extends bigint
            ? "use string for a bigint"
            : T extends symbol
              ? "use string for a symbol"
              : T extends Callable
                ? "pass data, not a function"
                : T extends ReadonlyMap<unknown, unknown>
                  ? "use an object or an array of entries for a Map"
                  : T extends ReadonlySet<unknown>
                    ? "use an array for a Set"
                    : T extends readonly unknown[]
                      ? ElementProblems<T, [...Depth, 0]>
                      : [MethodKeys<T>] extends [never]
                        ? PropertyProblems<T, [...Depth, 0]>
                        : "use a plain object for a class instance";

/** An optional element (of a tuple, or an optional parameter) may be left out, so its `undefined` is fine. */
type ElementProblems<T extends readonly unknown[], Depth extends 0[]> = number extends T["length"]
  ? Problems<T[number], Depth>
  : {
      [K in keyof T]-?: Problems<K extends RequiredKey<T, K> ? T[K] : Exclude<T[K], undefined>, Depth>;
    }[number];

/** An `undefined` property is dropped, so it is fine; a symbol-keyed property is dropped too, silently. */
type PropertyProblems<T, Depth extends 0[]> = {
  [K in keyof T]-?: K extends symbol
    ? "use a string key for a symbol key"
    : Problems<Exclude<T[K], undefined>, Depth>;
}[keyof T];

/** JSON with object keys sorted, so equal values give equal strings. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, item) => {
    if (item && typeof item === "object" && !Array.isArray(item) && !(item instanceof Date)) {
      return Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return item;
  });
}

export function hashOf(value: unknown): string {
  return sha256(stableStringify(value));
}

/** How an error is kept in the log. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const serialized: SerializedError = { name: error.name, message: error.message };
    const code = error instanceof TsWorkflowError ? error.code : (error as { code?: unknown }).code;
    if (typeof code === "string") serialized.code = code;
    if (error.stack) serialized.stack = error.stack;
    if (error instanceof RetryableError && error.retryAfterMs !== undefined)
      serialized.retryAfterMs = error.retryAfterMs;
    return serialized;
  }
  return {
    name: "Error",
    message: typeof error === "string" ? error : `Non-error thrown: ${safeString(error)}`,
  };
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
