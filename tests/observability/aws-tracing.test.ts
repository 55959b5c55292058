import { Metrics } from "@aws-lambda-powertools/metrics";
import { trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../lib/aws/client.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { runChild, sleep } from "../../lib/core/primitives.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { cloudWatchMetrics } from "../../lib/observability/cloudwatch-metrics.ts";
import { openTelemetry } from "../../lib/observability/telemetry.ts";
import { formatTraceparent } from "../../lib/observability/trace-context.ts";
import type { EventStore } from "../../lib/ports/event-store.ts";
import { deployStack, type Emulators, type Stack, startEmulators } from "../aws/harness/aws-stack.ts";
import { waitFor } from "../aws/harness/wait.ts";
import { type OpenTelemetryHarness, registerOpenTelemetry, spanTree } from "./support/spans.ts";

/** Traces of runs on the AWS runtime: the real handlers behind fauxqs and DynamoDB Local, in this process. */

let emulators: Emulators | undefined;
let otel: OpenTelemetryHarness;
const stacks: Stack[] = [];
beforeAll(async () => {
  configureLogging({ level: "silent" });
  otel = registerOpenTelemetry();
  emulators = await startEmulators("tsworkflow-tracing");
});
afterAll(async () => {
  for (const stack of stacks) await stack.stop();
  await emulators?.stop();
  await otel.shutdown();
  configureLogging();
});

const executions = new Map<string, number>();
const ran = (name: string) => executions.set(name, (executions.get(name) ?? 0) + 1);
const charge = step(
  "otel_aws_charge",
  async () => {
    ran("charge");
    if (executions.get("charge") === 1) throw new Error("card declined once");
    return 10;
  },
  { maxRetries: 2, retryDelay: "1s" },
);
const ship = step("otel_aws_ship", async (n: number) => {
  ran(`ship ${n}`);
  return n;
});
const receipt = workflow("otel_aws_receipt", async (n: number) => ship(n));
const order = workflow("otel_aws_order", async () => {
  const amount = await charge();
  await sleep("1s");
  const shipped = await Promise.all([ship(1), ship(2)]);
  const sent = await runChild(receipt, [amount]);
  return amount + shipped.length + sent;
});

/**
 * Makes the workflow function die once right after a commit (before sending what it asked for): once in
 * all, across the function's instances (the harness gives each instance its own store).
 */
function crashOnceAfterCommit(): (store: EventStore) => EventStore {
  let crashed = false;
  return (store) =>
    new Proxy(store, {
      get(target, key, receiver) {
        if (key !== "commit") return Reflect.get(target, key, receiver);
        return async (...args: Parameters<EventStore["commit"]>) => {
          const result = await target.commit(...args);
          if (!crashed && args[2].some((event) => event.type === "sleep_created")) {
            crashed = true;
            throw new Error("the function died after its commit");
          }
          return result;
        };
      },
    });
}

const count = (spans: readonly ReadableSpan[], name: string) =>
  spans.filter((span) => span.name === name).length;

describe("OpenTelemetry traces on the AWS runtime", () => {
  it("follows a run through SQS messages and Lambda invocations in the caller's trace, without duplicates after a crash", async () => {
    // Prepare
    if (!emulators) throw new Error("The emulators did not start.");
    otel.spans.reset();
    executions.clear();
    const crash = crashOnceAfterCommit();
    const stack = deployStack(
      emulators,
      { workflows: [order, receipt] },
      // Both functions activate runs (the step function after a step its run waits on alone): one crash in all.
      { wrapWorkflowStore: crash, wrapStepStore: crash, telemetry: openTelemetry },
    );
    stacks.push(stack);
    // Act: the caller's span travels in the start event, as the client would send it.
    const { runId, traceId } = await trace.getTracer("app").startActiveSpan("checkout", async (span) => {
      const traceparent = formatTraceparent(span.spanContext());
      const started = await stack.invokeStart({ workflow: "otel_aws_order", args: [], traceparent });
      span.end();
      return { runId: started.runId, traceId: span.spanContext().traceId };
    });
    await stack.waitForStatus(runId, "completed", 60_000);
    // The run's span is written by the activation that finished it, just after its commit.
    const finished = () => otel.spans.getFinishedSpans();
    await waitFor("the spans of both runs", () =>
      count(finished(), "run otel_aws_order") + count(finished(), "run otel_aws_receipt") === 2
        ? true
        : undefined,
    );
    // Assess
    const spans = otel.spans.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
    const tree = spanTree(spans);
    expect(tree).toContain("checkout > start otel_aws_order");
    expect(tree).toContain("start otel_aws_order > run otel_aws_order");
    expect(tree).toContain("activate otel_aws_order > step otel_aws_charge");
    expect(tree).toContain("activate otel_aws_order > sleep sleep#0");
    expect(tree).toContain("activate otel_aws_order > child otel_aws_receipt");
    expect(tree).toContain("activate otel_aws_order > activate otel_aws_receipt");
    expect(tree).toContain("activate otel_aws_receipt > step otel_aws_ship");
    expect(tree.filter((line) => line.startsWith("(root)") || line.startsWith("(remote)"))).toEqual([
      "(root) > checkout",
    ]);
    // One span per attempt that ran, and one per sleep, child run and run, crash or not.
    expect(count(spans, "step otel_aws_charge")).toBe(executions.get("charge"));
    expect(count(spans, "step otel_aws_ship")).toBe(
      (executions.get("ship 1") ?? 0) + (executions.get("ship 2") ?? 0) + (executions.get("ship 10") ?? 0),
    );
    expect(count(spans, "sleep sleep#0")).toBe(1);
    expect(count(spans, "child otel_aws_receipt")).toBe(1);
    expect(count(spans, "run otel_aws_order")).toBe(1);
    expect(count(spans, "run otel_aws_receipt")).toBe(1);
    // The crash fails one activation span. Other failed ones can only be commit conflicts of an instance
    // whose warm copy was stale (Lambda's instance churn), which the activation retries at once.
    const failedActivations = spans.filter(
      (span) =>
        span.name === "activate otel_aws_order" &&
        span.status.code === 2 &&
        !span.events.some((event) => event.attributes?.["exception.type"] === "VERSION_CONFLICT"),
    );
    expect(failedActivations).toHaveLength(1);
  }, 90_000);
});

describe("CloudWatch embedded metrics on the AWS runtime", () => {
  it("writes one EMF line per metric, with the namespace and the workflow dimension, through Powertools' Metrics, and counts every run started once: by the start function, another Lambda's client or its parent", async () => {
    // Prepare: every line the functions write to standard output.
    if (!emulators) throw new Error("The emulators did not start.");
    executions.clear();
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      lines.push(String(chunk));
      return write(chunk, ...rest);
    }) as typeof process.stdout.write;
    const metrics = new Metrics({ namespace: "tsworkflow-test", serviceName: "orders" });
    const stack = deployStack(
      emulators,
      { workflows: [order, receipt] },
      { telemetry: cloudWatchMetrics(metrics) },
    );
    stacks.push(stack);
    // The client of another Lambda (its own process: no telemetry of the functions).
    const client = createClient(stack.config, {
      clients: { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs },
    });
    // Act: one run through the start function, one through the client.
    try {
      const { runId } = await stack.invokeStart({ workflow: "otel_aws_order", args: [] });
      await stack.waitForStatus(runId, "completed", 60_000);
      const viaClient = await client.start(order, []);
      await stack.waitForStatus(viaClient, "completed", 60_000);
      await waitFor(
        "the completion metrics of both runs",
        () =>
          lines.filter((line) => line.includes('"RunsCompleted"') && line.includes('"otel_aws_order"'))
            .length === 2 || undefined,
      );
    } finally {
      process.stdout.write = write;
      await client.close();
    }
    // Assess
    const emf = lines
      .flatMap((chunk) => chunk.split("\n"))
      .filter((line) => line.startsWith("{") && line.includes('"_aws"'))
      .map(
        (line) =>
          JSON.parse(line) as Record<string, unknown> & {
            _aws: {
              CloudWatchMetrics: {
                Namespace: string;
                Dimensions: string[][];
                Metrics: { Name: string; Unit: string }[];
              }[];
            };
          },
      );
    const named = (name: string, workflowName: string) =>
      emf.filter(
        (entry) =>
          entry.workflow === workflowName && entry._aws.CloudWatchMetrics[0]?.Metrics[0]?.Name === name,
      );
    expect(emf.every((entry) => entry._aws.CloudWatchMetrics[0]?.Namespace === "tsworkflow-test")).toBe(true);
    expect(emf[0]?._aws.CloudWatchMetrics[0]?.Dimensions[0]).toEqual(
      expect.arrayContaining(["service", "workflow"]),
    );
    expect(named("RunsStarted", "otel_aws_order")).toHaveLength(2);
    expect(named("RunsCompleted", "otel_aws_order")).toHaveLength(2);
    expect(named("RunsStarted", "otel_aws_receipt")).toHaveLength(2);
    expect(named("RunsCompleted", "otel_aws_receipt")).toHaveLength(2);
    // The first run's charge fails once, the second's does not.
    expect(named("StepAttempts", "otel_aws_order").length).toBe(7);
    expect(named("StepErrors", "otel_aws_order")).toHaveLength(1);
    expect(named("StepRetries", "otel_aws_order")).toHaveLength(1);
    expect(named("StepDuration", "otel_aws_order")[0]?._aws.CloudWatchMetrics[0]?.Metrics[0]?.Unit).toBe(
      "Milliseconds",
    );
    expect(named("StepScheduleToStart", "otel_aws_order").length).toBe(7);
    expect(named("ActivationScheduleToStart", "otel_aws_order").length).toBeGreaterThan(0);
    const lateness = named("TimerLateness", "otel_aws_order");
    expect(lateness).toHaveLength(2);
    expect(lateness[0]?.TimerLateness).toBeGreaterThanOrEqual(0);
  });
});
