import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { StorageWriteError } from "../../core/errors.ts";

/**
 * A file system's refusal (a Node.js system error: ENOSPC, EROFS, EACCES…) as a {@link StorageWriteError}
 * naming `path` and saying `next`, what happens now; any other error as it is.
 */
export function writeFailure(error: unknown, path: string, next: string): unknown {
  const { code, syscall } = (error ?? {}) as NodeJS.ErrnoException;
  if (typeof code !== "string" || typeof syscall !== "string") return error;
  return new StorageWriteError(path, code, next, { cause: error });
}

/**
 * Creates the directory `path` and its parents. On a read-only file system Node's recursive mkdir answers
 * ENOENT; creating the first missing directory alone gives the real reason (EROFS, EACCES), which
 * {@link writeFailure} can name.
 */
export function makeDirectory(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    let missing = path;
    while (!existsSync(dirname(missing)) && dirname(missing) !== missing) missing = dirname(missing);
    mkdirSync(missing);
    mkdirSync(path, { recursive: true });
  }
}
