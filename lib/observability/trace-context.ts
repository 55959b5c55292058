/**
 * W3C trace context (`traceparent`) as tsworkflow stores it in a run's log and carries it in its tasks:
 * a string, so that every queue (in-process, BullMQ, SQS) passes it through as it is.
 * https://www.w3.org/TR/trace-context/#traceparent-header
 */

/** The parts of a span context that cross a process boundary. */
export interface CarriedSpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const INVALID_TRACE_ID = "0".repeat(32);
const INVALID_SPAN_ID = "0".repeat(16);

/** `00-<trace id>-<span id>-<flags>`. */
export function formatTraceparent(context: CarriedSpanContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.traceFlags.toString(16).padStart(2, "0")}`;
}

/** The span context of a `traceparent`, or undefined for a missing or malformed one (never thrown: telemetry must not fail a run). */
export function parseTraceparent(value: string | undefined): CarriedSpanContext | undefined {
  if (value === undefined) return undefined;
  const match = TRACEPARENT.exec(value);
  if (!match) return undefined;
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string];
  if (traceId === INVALID_TRACE_ID || spanId === INVALID_SPAN_ID) return undefined;
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16) };
}
