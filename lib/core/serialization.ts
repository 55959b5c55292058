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
 * Dates are allowed and become ISO strings; `undefined` object properties are dropped. `Serialized<T>`
 * below is this function's rules as a type: change both together.
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
