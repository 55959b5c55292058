import { createHash } from "node:crypto";

/**
 * The SHA-256 of a text, in hex: ids derived from other ids, content-addressed keys, deduplication
 * ids, shards. One helper, so that every module that derives such a value does it the same way.
 * @example
 * sha256("run_1\u0000continue").slice(0, 24);
 */
export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");
