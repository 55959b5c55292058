/**
 * The schema library of tsworkflow's own validation (events, queue messages, configuration): zod/mini,
 * a small fraction of zod's size in a Lambda bundle. Users' schemas (`workflow(..., { input })`,
 * `waitForEvent(..., { schema })`) are any zod 4 schema, regular zod or zod/mini (`$ZodType`, as zod
 * advises libraries to accept), checked by the same function.
 */
import { en } from "zod/locales";
import { safeParse } from "zod/mini";
import type { $ZodType, output, util } from "zod/v4/core";

export * from "zod/mini";

/** zod/mini has no messages of its own; zod's English ones, passed to each parse (no global setting). */
const english = { error: en().localeError };

/**
 * `safeParse(schema, value)` with zod's English messages where the schema sets none. Any zod 4 schema
 * (regular zod or zod/mini).
 */
export function safeParseWithMessages<S extends $ZodType>(
  schema: S,
  value: unknown,
): util.SafeParseResult<output<S>> {
  return safeParse(schema, value, english);
}
