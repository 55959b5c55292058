import { describe, InvalidTagError } from "./errors.ts";
import { CONTROL_CHARACTERS } from "./ids.ts";
import * as z from "./schema.ts";

/** Searchable labels of a run, e.g. `{ tenant: "acme", plan: "pro" }` (see `listRuns({ tags })`). */
export type RunTags = Record<string, string>;

/** The most tags a run may carry. */
export const MAX_TAGS = 16;
/** The longest tag value, in characters. */
export const MAX_TAG_VALUE_LENGTH = 256;

const KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * Checks tags before anything is stored: at most 16 per run, keys of 1-64 letters, digits, `_`, `.`
 * and `-` starting with a letter, values non-empty strings of at most 256 characters with no control
 * characters (keys and values then fit every store's index keys).
 * @returns a copy holding only the tags
 * @throws InvalidTagError naming the tag at fault and the rule
 */
export function validateTags(tags: unknown, where: string): RunTags {
  if (typeof tags !== "object" || tags === null || Array.isArray(tags))
    throw new InvalidTagError(
      `Invalid tags for ${where}: ${describe(tags)}; pass an object such as { tenant: "acme" }.`,
    );
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS)
    throw new InvalidTagError(
      `Too many tags for ${where}: ${entries.length}; a run carries at most ${MAX_TAGS}.`,
    );
  for (const [key, value] of entries) {
    if (!KEY.test(key))
      throw new InvalidTagError(
        `Invalid tag key ${JSON.stringify(key)} for ${where}: use 1 to 64 letters, digits, "_", "." or "-", starting with a letter.`,
      );
    if (
      typeof value !== "string" ||
      value.length === 0 ||
      value.length > MAX_TAG_VALUE_LENGTH ||
      CONTROL_CHARACTERS.test(value)
    )
      throw new InvalidTagError(
        `Invalid value ${describe(value)} of tag "${key}" for ${where}: use a string of 1 to ${MAX_TAG_VALUE_LENGTH} characters with no control characters.`,
      );
  }
  return Object.fromEntries(entries) as RunTags;
}

/**
 * The shape of tags in events and messages: an object of string values (the rules of {@link validateTags}
 * are applied where tags come in). A custom check, not `z.record`, which would add 2.5 KB to the Lambda bundle.
 */
export const runTagsSchema = z.custom<RunTags>(
  (value) =>
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((tag) => typeof tag === "string"),
  "must be an object of string values",
);

/** True when the run carries every tag of `wanted`. */
export function hasTags(tags: RunTags | undefined, wanted: RunTags): boolean {
  return Object.entries(wanted).every(([key, value]) => tags?.[key] === value);
}

/** The index key of one tag (`key=value`: keys never hold "="). */
export const tagKey = (key: string, value: string) => `${key}=${value}`;
