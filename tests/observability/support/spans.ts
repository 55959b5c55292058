import { context, metrics, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";

/** An OpenTelemetry SDK registered globally, as an app would, with in-memory exporters. */
export interface OpenTelemetryHarness {
  spans: InMemorySpanExporter;
  metrics: PeriodicExportingMetricReader;
  metricExporter: InMemoryMetricExporter;
  shutdown(): Promise<void>;
}

export function registerOpenTelemetry(): OpenTelemetryHarness {
  const spans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans,
    metrics: reader,
    metricExporter,
    async shutdown() {
      await provider.shutdown();
      await meterProvider.shutdown();
      trace.disable();
      metrics.disable();
      context.disable();
    },
  };
}

/** The value of each metric point by metric name and attributes (`name{k=v,…}`). */
export async function metricValues(harness: OpenTelemetryHarness): Promise<Map<string, number>> {
  const { resourceMetrics } = await harness.metrics.collect();
  const values = new Map<string, number>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      for (const point of metric.dataPoints) {
        const labels = Object.entries(point.attributes)
          .map(([key, value]) => `${key}=${String(value)}`)
          .sort()
          .join(",");
        const value =
          typeof point.value === "number" ? point.value : (point.value as { count: number }).count;
        values.set(`${metric.descriptor.name}{${labels}}`, value);
      }
    }
  }
  return values;
}

/** A span as the tests compare it: its name and the name of its parent in the same trace. */
export function spanTree(spans: readonly ReadableSpan[]): string[] {
  const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]));
  return spans
    .map((span) => {
      const parentId = span.parentSpanContext?.spanId;
      const parent = parentId === undefined ? undefined : byId.get(parentId);
      return `${parent ? parent.name : parentId === undefined ? "(root)" : "(remote)"} > ${span.name}`;
    })
    .sort();
}
