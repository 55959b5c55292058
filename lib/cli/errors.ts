import { TsWorkflowError } from "../core/errors.ts";

/** What the CLI's exit code says. */
export const EXIT = {
  ok: 0,
  /** The run failed, was not found, or the backend could not be used. */
  failed: 1,
  /** The command line was wrong. */
  usage: 2,
} as const;

/** A command line that cannot be run as given (exits with code 2), or a dashboard request (answered 400). */
export class UsageError extends TsWorkflowError {
  override name = "UsageError";
  constructor(message: string) {
    super("USAGE", message);
  }
}

/** The storage behind `--dir`, `--redis` or `--table` cannot be read or written. */
export class BackendUnavailableError extends TsWorkflowError {
  override name = "BackendUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("BACKEND_UNAVAILABLE", message, options);
  }
}

/** Cancel or retry asked of an engine that cannot do it (yet), or of a dashboard started without them. */
export class ActionNotAvailableError extends TsWorkflowError {
  override name = "ActionNotAvailableError";
  constructor(message: string) {
    super("ACTION_NOT_AVAILABLE", message);
  }
}
