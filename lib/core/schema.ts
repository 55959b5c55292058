/**
 * The schema library of tsworkflow's own validation (events, queue messages, configuration): zod/mini,
 * a small fraction of zod's size in a Lambda bundle. Users' schemas (`workflow(..., { input })`,
 * `waitForEvent(..., { schema })`) may be regular zod or zod/mini.
 */
import { en } from "zod/locales";
import type { output, ZodMiniType } from "zod/mini";
import type { util } from "zod/v4/core";

export * from "zod/mini";

/** zod/mini has no messages of its own; zod's English ones, passed to each parse (no global setting). */
const english = { error: en().localeError };

/** `schema.safeParse(value)` with zod's English messages in the issues. */
export function validate<S extends ZodMiniType>(schema: S, value: unknown): util.SafeParseResult<output<S>> {
  return schema.safeParse(value, english);
}
