import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configureLogging } from "../../lib/core/logger.ts";
import { runChild, sleep } from "../../lib/core/primitives.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import type { Runtime } from "../../lib/ports/runtime.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { waitFor } from "../aws/harness/wait.ts";
import { type RedisServer, startRedisServer } from "../redis/redis-server.ts";
import { type OpenTelemetryHarness, registerOpenTelemetry, spanTree } from "./support/spans.ts";

/** The same traced workflow on the file backend (embedded runtime) and on Redis (BullMQ workers). */

let otel: OpenTelemetryHarness;
let server: RedisServer;
const closers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  configureLogging({ level: "silent" });
  otel = registerOpenTelemetry();
  server = await startRedisServer();
});
afterAll(async () => {
  for (const close of closers) await close();
  await server?.stop();
  await otel.shutdown();
  configureLogging();
});

const attempts = new Map<string, number>();
const executions: string[] = [];
const reserve = step(
  "otel_be_reserve",
  async (key: string) => {
    executions.push("reserve");
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    if (attempt === 1) throw new Error("stock service unavailable");
    return 2;
  },
  { maxRetries: 2, retryDelay: 50 },
);
const pack = step("otel_be_pack", async (n: number) => {
  executions.push("pack");
  return n;
});
const invoice = workflow("otel_be_invoice", async (n: number) => pack(n));
const fulfil = workflow("otel_be_fulfil", async (key: string) => {
  const items = await reserve(key);
  await sleep(100);
  await Promise.all([pack(1), pack(items)]);
  return runChild(invoice, [items]);
});

const count = (spans: readonly ReadableSpan[], name: string) =>
  spans.filter((span) => span.name === name).length;

async function traceOneRun(
  runtime: Runtime,
  key: string,
): Promise<{ spans: ReadableSpan[]; tree: string[] }> {
  executions.length = 0;
  const { runId, traceId } = await trace.getTracer("app").startActiveSpan("ship order", async (span) => {
    const started = await runtime.start(fulfil, [key]);
    span.end();
    return { runId: started.runId, traceId: span.spanContext().traceId };
  });
  expect(await runtime.waitForRun(runId, { timeoutMs: 30_000 })).toMatchObject({
    status: "completed",
    result: 2,
  });
  const ofRun = () => otel.spans.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
  // An activation's span ends after the spans it made (a run's span is made by its last commit): wait for
  // both runs' spans and for the parent of every span, or a busy machine reads the trace too early.
  await waitFor("the spans of both runs and of the activations that made them", () => {
    const spans = ofRun();
    const ids = new Set(spans.map((span) => span.spanContext().spanId));
    const orphan = spans.some((span) => {
      const parentId = span.parentSpanContext?.spanId;
      return parentId !== undefined && !ids.has(parentId) && span.name !== "ship order";
    });
    return count(spans, "run otel_be_fulfil") + count(spans, "run otel_be_invoice") === 2 && !orphan
      ? true
      : undefined;
  });
  const spans = ofRun();
  return { spans, tree: spanTree(spans) };
}

function expectTraceOfFulfil(spans: ReadableSpan[], tree: string[]): void {
  expect(tree).toContain("ship order > start otel_be_fulfil");
  expect(tree).toContain("start otel_be_fulfil > activate otel_be_fulfil");
  expect(tree).toContain("start otel_be_fulfil > run otel_be_fulfil");
  expect(tree).toContain("activate otel_be_fulfil > step otel_be_reserve");
  expect(tree).toContain("activate otel_be_fulfil > sleep sleep#0");
  expect(tree).toContain("activate otel_be_fulfil > child otel_be_invoice");
  expect(tree).toContain("activate otel_be_fulfil > activate otel_be_invoice");
  expect(tree).toContain("activate otel_be_invoice > step otel_be_pack");
  expect(tree.filter((line) => line.startsWith("(remote)"))).toEqual([]);
  const reserveAttempts = spans
    .filter((span) => span.name === "step otel_be_reserve")
    .map((span) => [span.attributes["tsworkflow.step.attempt"], span.status.code])
    .sort();
  expect(reserveAttempts).toEqual([
    [1, 2],
    [2, 0],
  ]);
  expect(count(spans, "step otel_be_pack")).toBe(executions.filter((name) => name === "pack").length);
  expect(count(spans, "sleep sleep#0")).toBe(1);
  expect(count(spans, "child otel_be_invoice")).toBe(1);
}

describe("OpenTelemetry traces on the file and Redis backends", () => {
  it("traces a run on the file backend in the caller's trace", async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), "tsw-otel-"));
    const runtime = new LocalRuntime({ dir });
    closers.push(async () => {
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // Act
    const { spans, tree } = await traceOneRun(runtime, "file");
    // Assess
    expectTraceOfFulfil(spans, tree);
  });

  it("traces a run whose activations and steps two BullMQ workers share, in the caller's trace", async () => {
    // Prepare
    const prefix = `tsw-otel-${process.pid}:`;
    const workers: RedisRuntime[] = ["a", "b"].map((id) =>
      createRedisRuntime({ url: server.url, prefix, workerId: id }),
    );
    for (const worker of workers) {
      closers.push(() => worker.close());
      await worker.startWorker();
    }
    // Act
    const { spans, tree } = await traceOneRun(workers[0] as RedisRuntime, "redis");
    // Assess
    expectTraceOfFulfil(spans, tree);
  });
});
