import {
  closeSync,
  constants,
  copyFileSync,
  fdatasyncSync,
  openSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { dirname } from "node:path";

/** fdatasyncs a file or a directory (a directory's entries: a file created, renamed or removed in it). */
export function syncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `path` by `text` so that a crash leaves either the old file or the new one: written to a file
 * beside it, synced, renamed over it, and the rename synced.
 */
export function rewriteDurably(path: string, text: string): void {
  const temporary = `${path}.rewrite`;
  writeFileSync(temporary, text);
  syncPath(temporary);
  renameSync(temporary, path);
  syncPath(dirname(path));
}

/** Copies `from` to `to` (which must not exist yet), synced with its directory entry. */
export function copyDurably(from: string, to: string): void {
  copyFileSync(from, to, constants.COPYFILE_EXCL);
  syncPath(to);
  syncPath(dirname(to));
}
