import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { context, type Span, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { configureLogging, runChild, sleep, step, waitForEvent, workflow } from "tsworkflow";
import { openTelemetryTracing } from "tsworkflow/engine";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { manualEngine } from "../core/support/manual-engine.ts";

const run = promisify(execFile);
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  configureLogging({ level: "silent" });
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
});
afterAll(() => {
  trace.disable();
  context.disable();
  configureLogging();
});
beforeEach(() => exporter.reset());

let flakyCalls = 0;
const flaky = step(
  "trace_flaky",
  async () => {
    flakyCalls += 1;
    if (flakyCalls === 1) throw new Error("gateway timeout");
    return "ok";
  },
  { maxRetries: 2, retryDelay: 20 },
);
const left = step("trace_left", async () => "l");
const right = step("trace_right", async () => "r");
const double = step("trace_double", async (n: number) => n * 2);
const child = workflow("trace_child", async (n: number) => double(n));
const order = workflow("trace_order", async () => {
  await flaky();
  await Promise.all([left(), right()]);
  await sleep("50ms");
  const approval = await waitForEvent<{ ok: boolean }>("approval", { timeout: "1h" });
  const doubled = await runChild(child, [21]);
  return { approval, doubled };
});

const byName = (spans: ReadableSpan[], name: string) => spans.filter((span) => span.name === name);
const parentOf = (span: ReadableSpan | undefined) => span?.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan | undefined) => span?.spanContext().spanId;

describe("OpenTelemetry traces", () => {
  it("give a run one trace under the caller's span: start, activations, step attempts, sleep, wait and child run", async () => {
    // Prepare
    flakyCalls = 0;
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const tracer = trace.getTracer("the-app");
    try {
      // Act: started inside the app's own span.
      const caller = await tracer.startActiveSpan("handle request", async (span: Span) => {
        const started = await runtime.start(order, []);
        span.end();
        return { runId: started.runId, span };
      });
      const waiting = async () =>
        (await runtime.getEvents(caller.runId)).some((event) => event.type === "hook_created");
      for (let tries = 0; !(await waiting()); tries += 1) {
        if (tries > 1500) throw new Error("the run never waited for its approval");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await runtime.sendEvent(caller.runId, "approval", { ok: true });
      const run = await runtime.waitForRun(caller.runId, { timeoutMs: 15_000 });
      // Assess
      expect(run.status).toBe("completed");
      const spans = exporter.getFinishedSpans();
      const traceId = caller.span.spanContext().traceId;
      expect(
        new Set(
          spans.filter((span) => span.name !== "handle request").map((span) => span.spanContext().traceId),
        ),
      ).toEqual(new Set([traceId]));
      const [start] = byName(spans, "start trace_order");
      expect(parentOf(start)).toBe(caller.span.spanContext().spanId);
      const underRun = (name: string) => byName(spans, name).every((span) => parentOf(span) === idOf(start));
      // Step attempts: the failed one with its error, then the retry; each parallel step once.
      const attempts = byName(spans, "step trace_flaky");
      expect(attempts.map((span) => span.attributes["tsworkflow.attempt"])).toEqual([1, 2]);
      expect(attempts.map((span) => span.status.code)).toEqual([2, 0]);
      expect(attempts[0]?.events.map((event) => event.name)).toContain("exception");
      expect(byName(spans, "step trace_left")).toHaveLength(1);
      expect(byName(spans, "step trace_right")).toHaveLength(1);
      expect(
        underRun("step trace_flaky") && underRun("step trace_left") && underRun("step trace_right"),
      ).toBe(true);
      // Activations, one carrying the retry decision.
      const activations = byName(spans, "run trace_order");
      expect(activations.length).toBeGreaterThan(1);
      expect(underRun("run trace_order")).toBe(true);
      const retry = activations
        .flatMap((span) => span.events)
        .find((event) => event.name === "step_retrying");
      expect(retry?.attributes).toMatchObject({ "tsworkflow.attempt": 1, "tsworkflow.retry_delay_ms": 20 });
      // The sleep and the wait, as long as they lasted.
      const [slept] = byName(spans, "sleep sleep#0");
      expect(parentOf(slept)).toBe(idOf(start));
      expect(durationMs(slept)).toBeGreaterThanOrEqual(45);
      const [waited] = byName(spans, "wait approval");
      expect(parentOf(waited)).toBe(idOf(start));
      expect(waited?.attributes["tsworkflow.timed_out"]).toBe(false);
      // The child run's spans hang under its own start span, a child of the parent's.
      const [childStart] = byName(spans, "start trace_child");
      expect(parentOf(childStart)).toBe(idOf(start));
      expect(byName(spans, "step trace_double").every((span) => parentOf(span) === idOf(childStart))).toBe(
        true,
      );
      expect(byName(spans, "run trace_child").every((span) => parentOf(span) === idOf(childStart))).toBe(
        true,
      );
    } finally {
      await runtime.close();
    }
  });

  it("records no span twice when every activation replays the run from its log", async () => {
    // Prepare: an engine that keeps no live run, so each activation replays the log.
    flakyCalls = 1;
    const simple = workflow("trace_simple", async () => {
      await left();
      await sleep("1h");
      await right();
      return "done";
    });
    const m = manualEngine({ cacheSize: 0, tracing: openTelemetryTracing() });
    // Act
    const { runId } = await m.engine.start(simple, []);
    await m.runToEnd();
    // Assess
    expect((await m.run(runId)).status).toBe("completed");
    const spans = exporter.getFinishedSpans();
    expect(byName(spans, "start trace_simple")).toHaveLength(1);
    expect(byName(spans, "step trace_left")).toHaveLength(1);
    expect(byName(spans, "step trace_right")).toHaveLength(1);
    expect(byName(spans, "sleep sleep#0")).toHaveLength(1);
    expect(
      byName(spans, "run trace_simple").every((span) => span.attributes["tsworkflow.replayed"] === true),
    ).toBe(true);
    const [event] = await m.events(runId);
    expect(event).toMatchObject({
      type: "workflow_started",
      traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-/),
    });
  });

  it("records nothing and stores no trace context when no SDK is registered", async () => {
    // Prepare
    trace.disable();
    try {
      const m = manualEngine({ tracing: openTelemetryTracing() });
      // Act
      const { runId } = await m.engine.start(child, [1]);
      await m.runToEnd();
      // Assess
      expect(exporter.getFinishedSpans()).toEqual([]);
      const [event] = await m.events(runId);
      expect(event).not.toHaveProperty("traceparent");
    } finally {
      trace.setGlobalTracerProvider(provider);
    }
  });
});

describe("examples/tracing.ts", () => {
  it("prints every span of the run in the app's trace", async () => {
    // Act
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/tracing.ts"], {
      cwd: fileURLToPath(new URL("../../", import.meta.url)),
      timeout: 60_000,
    });
    // Assess
    const traceId = /: trace ([0-9a-f]{32})/.exec(stdout)?.[1];
    expect(stdout).toMatch(/run \S+ completed: trace/);
    for (const name of [
      "POST /checkout",
      "start checkout",
      "run checkout",
      "step charge_card",
      "sleep sleep#0",
      "step send_receipt",
    ])
      expect(stdout).toContain(`name: '${name}'`);
    const traceIds = new Set([...stdout.matchAll(/ {2}traceId: '([0-9a-f]{32})'/g)].map((match) => match[1]));
    expect(traceIds).toEqual(new Set([traceId]));
  });
});

function durationMs(span: ReadableSpan | undefined): number {
  if (!span) return -1;
  const [seconds, nanos] = span.duration;
  return seconds * 1000 + nanos / 1e6;
}
