import { getLogger } from "../core/logger.ts";
import { optional } from "../core/optional.ts";
import type { ScheduleError } from "../ports/schedule-store.ts";
import type { ScheduleDefinition } from "./schedule.ts";

/**
 * Codes of the errors about the start itself: the same tick would fail the same way every time, so it is
 * given up. Any other error (a connection refused, a timeout, a throttled table, a full disk) may pass: the
 * tick is tried again.
 */
const PERMANENT = new Set([
  "INVALID_INPUT",
  "NOT_SERIALIZABLE",
  "PAYLOAD_TOO_LARGE",
  "IDEMPOTENCY_CONFLICT",
  "INVALID_IDEMPOTENCY_KEY",
  "WORKFLOW_NOT_FOUND",
  "WORKFLOW_VERSION_NOT_FOUND",
  "CONFIGURATION",
]);

/** How a backend goes on after a failed start. */
export interface StartFailureHandling {
  /** What happens to a tick whose error may pass, a sentence: "Tried again in 5 s." */
  retried: string;
  /** When that tick is tried again, when the backend knows. */
  retryAt?: number;
  /** What puts fixed code to work: "restart", "deploy". */
  apply: string;
}

/**
 * A schedule's failed start (of a tick, or of a trigger when `tick` is undefined), on every backend: logged
 * at level error with the schedule, its workflow, the tick, the error and what happens next, and returned as
 * the schedule's state keeps it (`lastError`). `givenUp` when the start can only fail again (invalid input,
 * an idempotency conflict, a payload too large...): the tick counts as handled.
 */
export function startFailed(
  definition: ScheduleDefinition,
  error: unknown,
  at: number,
  tick: number | undefined,
  handling: StartFailureHandling,
): { failure: ScheduleError; givenUp: boolean } {
  const { name, message, code } = error as Error & { code?: unknown };
  const givenUp = typeof code === "string" && PERMANENT.has(code);
  const what = tick === undefined ? "a trigger" : `the tick of ${new Date(tick).toISOString()}`;
  getLogger().error(
    `Schedule "${definition.name}" could not start workflow "${definition.workflow.name}" for ${what}: ${sentence(String(message))} ${
      givenUp
        ? `The ${tick === undefined ? "trigger" : "tick"} is given up; if the next ones fail the same way, fix the schedule's args or workflow, then ${handling.apply}.`
        : handling.retried
    }`,
    {
      schedule: definition.name,
      workflow: definition.workflow.name,
      ...optional("tick", tick === undefined ? undefined : new Date(tick).toISOString()),
      code,
    },
  );
  return {
    failure: {
      at,
      ...optional("tick", tick),
      name: String(name),
      ...optional("code", typeof code === "string" ? code : undefined),
      message: String(message),
      ...optional("retryAt", givenUp ? undefined : handling.retryAt),
    },
    givenUp,
  };
}

/** The text, ending with a full stop. */
export function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** A schedule's failed attempt to start a run, as `listSchedules` shows it. */
export interface ScheduleFailure {
  /** When the start was tried. */
  at: Date;
  /** The tick it was for; none for a trigger. */
  tick?: Date;
  /** The error's name (`WorkflowInputError`, `Error`…). */
  name: string;
  /** The error's code, when it has one (`INVALID_INPUT`). */
  code?: string;
  /** The error's message. */
  message: string;
  /** When the tick is tried again (an error that may pass); none when the tick was given up. */
  retryAt?: Date;
}

/** A stored failed start as `listSchedules` shows it (its times as `Date`s). */
export function failureOf(error: ScheduleError): ScheduleFailure {
  return {
    at: new Date(error.at),
    ...optional("tick", dateOf(error.tick)),
    name: error.name,
    ...optional("code", error.code),
    message: error.message,
    ...optional("retryAt", dateOf(error.retryAt)),
  };
}

/** A stored time (epoch ms) as listings give it, a `Date`; undefined stays undefined. */
export function dateOf(time: number | undefined): Date | undefined {
  return time === undefined ? undefined : new Date(time);
}
