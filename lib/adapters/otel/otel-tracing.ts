import { createRequire } from "node:module";
import type * as Api from "@opentelemetry/api";
import {
  noTracing,
  type SpanOptions,
  type TracedSpan,
  type TraceParent,
  type Tracing,
} from "../../ports/tracing.ts";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Spans through `@opentelemetry/api` when the app has it installed, else {@link noTracing}. The API is a
 * no-op until the app registers an SDK (a tracer provider), so nothing is recorded or exported unless the
 * app asks for it. Loaded with `require` at run time, so that bundles never include it.
 * @example
 * import { openTelemetryTracing } from "tsworkflow/engine";
 * const engine = new Engine({ store, queue, timers, tracing: openTelemetryTracing() });
 */
export function openTelemetryTracing(): Tracing {
  const api = loadApi();
  return api ? new OpenTelemetryTracing(api) : noTracing;
}

function loadApi(): typeof Api | undefined {
  try {
    return createRequire(import.meta.url)("@opentelemetry/api") as typeof Api;
  } catch {
    return undefined;
  }
}

class OpenTelemetryTracing implements Tracing {
  private readonly tracer: Api.Tracer;

  constructor(private readonly api: typeof Api) {
    this.tracer = api.trace.getTracer("tsworkflow");
  }

  startSpan(name: string, options: SpanOptions = {}): TracedSpan {
    const { api } = this;
    const parent = options.parent ? parseTraceparent(options.parent) : undefined;
    const context = parent ? api.trace.setSpanContext(api.ROOT_CONTEXT, parent) : api.context.active();
    const span = this.tracer.startSpan(
      name,
      {
        ...(options.attributes ? { attributes: options.attributes } : {}),
        ...(options.startTime === undefined ? {} : { startTime: options.startTime }),
      },
      context,
    );
    const spanContext = span.spanContext();
    return {
      traceparent: api.isSpanContextValid(spanContext) ? formatTraceparent(spanContext) : undefined,
      addEvent: (event, attributes) => {
        span.addEvent(event, attributes);
      },
      end: ({ error, endTime } = {}) => {
        if (error !== undefined) {
          if (error instanceof Error) span.recordException(error);
          span.setStatus({
            code: api.SpanStatusCode.ERROR,
            message: error instanceof Error ? error.message : String(error),
          });
        }
        span.end(endTime);
      },
    };
  }
}

function parseTraceparent(traceparent: TraceParent): Api.SpanContext | undefined {
  const match = TRACEPARENT.exec(traceparent);
  if (!match) return undefined;
  return {
    traceId: match[1] as string,
    spanId: match[2] as string,
    traceFlags: Number.parseInt(match[3] as string, 16),
    isRemote: true,
  };
}

function formatTraceparent(context: Api.SpanContext): TraceParent {
  return `00-${context.traceId}-${context.spanId}-${context.traceFlags.toString(16).padStart(2, "0")}`;
}
