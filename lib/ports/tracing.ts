/** A span's W3C trace context, `00-<trace id>-<span id>-<flags>`: recorded in the log and carried by tasks. */
export type TraceParent = string;

/** Attribute values of a span. */
export type SpanAttributes = Record<string, string | number | boolean>;

/** Options of {@link Tracing.startSpan}. */
export interface SpanOptions {
  /** The parent span. @default the caller's active span, if any */
  parent?: TraceParent | undefined;
  attributes?: SpanAttributes;
  /** Epoch ms. @default now */
  startTime?: number;
}

/** A span being recorded. */
export interface TracedSpan {
  /** This span's context, to parent later spans (in other processes too); undefined when nothing traces. */
  readonly traceparent: TraceParent | undefined;
  /** A point in time within the span, e.g. a retry decided. */
  addEvent(name: string, attributes?: SpanAttributes): void;
  /** Ends the span; with an error, marks it failed and records the error. */
  end(options?: { error?: unknown; endTime?: number }): void;
}

/**
 * Where the engine reports its spans: a start, each activation, each step attempt, each sleep and wait.
 * The engine never starts an exporter; the OpenTelemetry adapter records spans only when the app
 * registered an OpenTelemetry SDK.
 */
export interface Tracing {
  startSpan(name: string, options?: SpanOptions): TracedSpan;
}

const NO_SPAN: TracedSpan = { traceparent: undefined, addEvent: () => {}, end: () => {} };

/** Records nothing. */
export const noTracing: Tracing = { startSpan: () => NO_SPAN };
