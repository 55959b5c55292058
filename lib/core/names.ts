import { ConfigurationError, describe } from "./errors.ts";

/** What names workflows, steps, events and patches: 1 to 100 letters, digits, `_`, `.`, `:` or `-`. */
const NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

/**
 * @param what the kind of name, for the message ("step name")
 * @param where where it was given, for the message (" in patched()")
 * @throws ConfigurationError when `value` is not such a name
 */
export function assertName(what: string, value: unknown, where = ""): asserts value is string {
  if (typeof value !== "string" || !NAME.test(value))
    throw new ConfigurationError(
      `Invalid ${what} ${describe(value)}${where}: use 1 to 100 letters, digits, "_", ".", ":" or "-".`,
    );
}
