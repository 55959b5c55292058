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
