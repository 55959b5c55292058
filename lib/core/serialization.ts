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
 * Dates are allowed and become ISO strings; `undefined` object properties are dropped.
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
export function roundTrip<T>(value: T, what: string, limit = MAX_PAYLOAD_BYTES): T {
  return JSON.parse(toJson(value, what, limit)) as T;
}

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
