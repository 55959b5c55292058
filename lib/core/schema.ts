/**
 * The schema library of tsworkflow's own validation (events, queue messages, configuration): zod/mini,
 * a small fraction of zod's size in a Lambda bundle. Users' schemas (`workflow(..., { input })`,
 * `waitForEvent(..., { schema })`) are any zod 4 schema, regular zod or zod/mini (`$ZodType`, as zod
 * advises libraries to accept), checked by the same function.
 */
import { safeParse } from "zod/mini";
import type { $ZodErrorMap, $ZodType, output, util } from "zod/v4/core";
import { describe } from "./errors.ts";

export * from "zod/mini";

/** What `string`, `array`... lengths count, in a too_small / too_big message. */
const UNITS: Record<string, string> = {
  string: "characters",
  array: "items",
  set: "items",
  map: "entries",
  file: "bytes",
};

/** The string formats that a string must match, as an invalid_format message says it. */
const STRING_RULES: Record<string, string> = {
  regex: "match pattern",
  starts_with: "start with",
  ends_with: "end with",
  includes: "include",
};

/** `string`, `null`, `array`, `date`, `NaN`... as an invalid_type message names what it received. */
function received(input: unknown): string {
  if (typeof input === "object") return Object.prototype.toString.call(input).slice(8, -1).toLowerCase();
  return typeof input === "number" && !Number.isFinite(input) ? String(input) : typeof input;
}

/**
 * English messages for the issues of any zod 4 schema: zod/mini has none of its own, and zod's English
 * locale (`zod/locales`) costs ~2.7 KB of every Lambda bundle. Same wording as that locale where a test or
 * a user may read it ("Invalid input: expected boolean, received string", "Too small: expected number to be
 * >0"). Passed to each parse, not set globally, so that users' own zod settings stay theirs. Issues it has
 * no words for (custom refinements without a message) fall back to zod's "Invalid input".
 */
const englishMessage: $ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      return `Invalid input: expected ${issue.expected}, received ${received(issue.input)}`;
    case "invalid_value":
    case "invalid_union": {
      // A discriminated union lists the discriminator's values, with the discriminator as the issue's path.
      const values =
        issue.code === "invalid_value" ? issue.values : (issue.options as util.Primitive[] | undefined);
      if (values?.length)
        return `Invalid input: expected ${values.length > 1 ? "one of " : ""}${values.map(describe).join("|")}`;
      return issue.inclusive === false ? "Invalid input: more than one option matched" : undefined;
    }
    case "too_small":
    case "too_big": {
      const small = issue.code === "too_small";
      const unit = UNITS[issue.origin];
      const bound = issue.exact ? "exactly " : `${small ? ">" : "<"}${issue.inclusive ? "=" : ""}`;
      const limit = small ? issue.minimum : issue.maximum;
      return `Too ${small ? "small" : "big"}: expected ${issue.origin} to ${unit ? `have ${bound}${limit} ${unit}` : `be ${bound}${limit}`}`;
    }
    case "invalid_format": {
      const { format } = issue;
      const rule = STRING_RULES[format];
      if (rule)
        return `Invalid string: must ${rule} ${format === "regex" ? issue.pattern : describe(issue.prefix ?? issue.suffix ?? issue.includes)}`;
      return `Invalid ${format === "email" ? "email address" : /^(date|time|duration)/.test(format) ? `ISO ${format}` : format.replace("_", " ")}`;
    }
    case "not_multiple_of":
      return `Invalid number: must be a multiple of ${issue.divisor}`;
    case "unrecognized_keys":
      return `Unrecognized key${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.map(describe).join(", ")}`;
    case "invalid_key":
    case "invalid_element":
      return `Invalid ${issue.code === "invalid_key" ? "key" : "value"} in ${issue.origin}`;
  }
};

/**
 * `safeParse(schema, value)` with English messages where the schema sets none. Any zod 4 schema (regular
 * zod or zod/mini).
 */
export function safeParseWithMessages<S extends $ZodType>(
  schema: S,
  value: unknown,
): util.SafeParseResult<output<S>> {
  return safeParse(schema, value, { error: englishMessage });
}
