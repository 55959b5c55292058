import { trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { configureLogging, step, workflow } from "tsworkflow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { type RedisServer, startRedisServer } from "../redis/redis-server.ts";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const north = step("trace_redis_north", async () => "n");
const south = step("trace_redis_south", async () => "s");
const fanOut = workflow("trace_redis_fan_out", async () => Promise.all([north(), south()]));

let server: RedisServer;
let runtime: RedisRuntime;

beforeAll(async () => {
  configureLogging({ level: "silent" });
  trace.setGlobalTracerProvider(provider);
  server = await startRedisServer();
  // Steps as BullMQ jobs: their trace context travels in the job.
  runtime = createRedisRuntime({ url: server.url, prefix: `tsw-trace-${process.pid}:`, inlineSteps: false });
  await runtime.startWorker();
});

afterAll(async () => {
  await runtime?.close();
  await server?.stop();
  trace.disable();
  configureLogging();
});

describe("OpenTelemetry traces in Redis mode", () => {
  it("carries the run's trace context through BullMQ jobs to the step attempts", async () => {
    // Act
    const { runId } = await runtime.start(fanOut, []);
    const run = await runtime.waitForRun(runId, { timeoutMs: 20_000 });
    // Assess
    expect(run.status).toBe("completed");
    const spans = exporter.getFinishedSpans();
    const start = spans.find((span) => span.name === "start trace_redis_fan_out");
    const steps = spans.filter((span) => span.name.startsWith("step trace_redis_"));
    expect(steps.map((span) => span.name).sort()).toEqual([
      "step trace_redis_north",
      "step trace_redis_south",
    ]);
    for (const span of [...steps, ...spans.filter((span) => span.name === "run trace_redis_fan_out")]) {
      expect(span.spanContext().traceId).toBe(start?.spanContext().traceId);
      expect(span.parentSpanContext?.spanId).toBe(start?.spanContext().spanId);
    }
  });
});
