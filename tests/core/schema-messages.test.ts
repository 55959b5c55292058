/**
 * The English messages of tsworkflow's own error map, for the issues of any zod 4 schema (zod/mini has no
 * messages of its own, and zod's English locale is too big for a Lambda bundle).
 */
import { describe, expect, it } from "vitest";
import * as z from "zod/mini";
import type { $ZodType } from "zod/v4/core";
import { safeParseWithMessages } from "../../lib/core/schema.ts";

/** `path: message` of each issue of parsing `value` with `schema`. */
function messages(schema: $ZodType, value: unknown): string[] {
  const parsed = safeParseWithMessages(schema, value);
  if (parsed.success) throw new Error(`expected ${String(value)} to fail`);
  return parsed.error.issues.map((issue) => `${issue.path.join(".") || "(value)"}: ${issue.message}`);
}

describe("schema messages", () => {
  it.each<[string, $ZodType, unknown, string]>([
    ["a string", z.string(), 5, "(value): Invalid input: expected string, received number"],
    [
      "a boolean",
      z.object({ ok: z.boolean() }),
      { ok: "yes" },
      "ok: Invalid input: expected boolean, received string",
    ],
    [
      "a missing field",
      z.object({ id: z.string() }),
      {},
      "id: Invalid input: expected string, received undefined",
    ],
    ["null", z.string(), null, "(value): Invalid input: expected string, received null"],
    ["an array", z.object({}), [1], "(value): Invalid input: expected object, received array"],
    ["a Date", z.string(), new Date(0), "(value): Invalid input: expected string, received date"],
    ["NaN", z.number(), Number.NaN, "(value): Invalid input: expected number, received NaN"],
    ["one literal", z.literal("v1"), "v2", '(value): Invalid input: expected "v1"'],
    [
      "an enum",
      z.enum(["fixed", "exponential"]),
      "linear",
      '(value): Invalid input: expected one of "fixed"|"exponential"',
    ],
    [
      "a discriminator",
      z.discriminatedUnion("type", [z.object({ type: z.literal("a") }), z.object({ type: z.literal("b") })]),
      { type: "c" },
      'type: Invalid input: expected one of "a"|"b"',
    ],
    ["a union", z.union([z.string(), z.number()]), true, "(value): Invalid input"],
    ["a positive number", z.number().check(z.positive()), 0, "(value): Too small: expected number to be >0"],
    ["a minimum", z.number().check(z.minimum(13)), 12, "(value): Too small: expected number to be >=13"],
    [
      "a shortest string",
      z.string().check(z.minLength(3)),
      "ab",
      "(value): Too small: expected string to have >=3 characters",
    ],
    [
      "a longest array",
      z.array(z.string()).check(z.maxLength(1)),
      ["a", "b"],
      "(value): Too big: expected array to have <=1 items",
    ],
    [
      "an exact length",
      z.string().check(z.length(2)),
      "abc",
      "(value): Too big: expected string to have exactly 2 characters",
    ],
    ["a maximum", z.number().check(z.lt(10)), 10, "(value): Too big: expected number to be <10"],
    ["an email", z.email(), "not-an-email", "(value): Invalid email address"],
    ["a datetime", z.iso.datetime(), "yesterday", "(value): Invalid ISO datetime"],
    ["a uuid", z.uuid(), "123", "(value): Invalid uuid"],
    [
      "a pattern",
      z.string().check(z.regex(/^a+$/)),
      "b",
      "(value): Invalid string: must match pattern /^a+$/",
    ],
    [
      "a prefix",
      z.string().check(z.startsWith("arn:")),
      "x",
      '(value): Invalid string: must start with "arn:"',
    ],
    [
      "a suffix",
      z.string().check(z.endsWith(".fifo")),
      "x",
      '(value): Invalid string: must end with ".fifo"',
    ],
    ["a part", z.string().check(z.includes("@")), "x", '(value): Invalid string: must include "@"'],
    ["a multiple", z.number().check(z.multipleOf(5)), 7, "(value): Invalid number: must be a multiple of 5"],
    [
      "known keys",
      z.strictObject({ a: z.string() }),
      { a: "x", b: 1, c: 2 },
      '(value): Unrecognized keys: "b", "c"',
    ],
    ["one known key", z.strictObject({}), { b: 1 }, '(value): Unrecognized key: "b"'],
    [
      "a record key",
      z.record(z.string().check(z.minLength(2)), z.number()),
      { a: 1 },
      "a: Invalid key in record",
    ],
    [
      "a refinement without a message",
      z.string().check(z.refine(() => false)),
      "x",
      "(value): Invalid input",
    ],
    ["the schema's own message", z.string("must be a name"), 1, "(value): must be a name"],
  ])("say what %s expects", (_case, schema, value, message) => {
    expect(messages(schema, value)).toEqual([message]);
  });

  it("change no global zod setting, which is the user's", () => {
    // Prepare
    const before = { ...z.config() };

    // Act
    messages(z.string(), 5);

    // Assess
    expect(z.config()).toEqual(before);
  });
});
