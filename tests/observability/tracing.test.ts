import { trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import {
  configureLogging,
  continueAsNew,
  FatalError,
  runChild,
  sleep,
  step,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { type CloudWatchMetricsSink, cloudWatchMetrics } from "tsworkflow/aws";
import {
  type ActivationTask,
  MemorySlotStore,
  openTelemetry,
  RunLimits,
  retryRun,
  type TelemetryFactory,
} from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ManualEngine, manualEngine } from "../core/support/manual-engine.ts";
import { metricValues, type OpenTelemetryHarness, registerOpenTelemetry, spanTree } from "./support/spans.ts";

let otel: OpenTelemetryHarness;
beforeAll(() => {
  configureLogging({ level: "silent" });
  otel = registerOpenTelemetry();
});
afterAll(async () => {
  configureLogging();
  await otel.shutdown();
});
beforeEach(() => otel.spans.reset());

let flakyCalls = 0;
const flaky = step(
  "otel_flaky",
  async () => {
    flakyCalls += 1;
    if (flakyCalls === 1) throw new Error("first attempt fails");
    return 1;
  },
  { maxRetries: 2, retryDelay: "1s" },
);
const double = step("otel_double", async (n: number) => {
  // A span of the step's own code joins the trace under the step attempt.
  trace.getTracer("app").startActiveSpan("app work", (span) => span.end());
  return n * 2;
});
const child = workflow("otel_child", async (n: number) => double(n));
const traced = workflow("otel_traced", async () => {
  const a = await flaky();
  await sleep("1m");
  const [b, c] = await Promise.all([double(a), double(2)]);
  await waitForEvent("approve");
  const d = await runChild(child, [3]);
  return a + b + c + d;
});

/** Starts `traced` inside a caller's span, as an app handling a request would. */
async function startInCallerSpan(m: ManualEngine): Promise<{ runId: string; traceId: string }> {
  return trace.getTracer("app").startActiveSpan("handle request", async (span) => {
    const { runId } = await m.engine.start(traced, []);
    span.end();
    return { runId, traceId: span.spanContext().traceId };
  });
}

async function runToEnd(m: ManualEngine, runId: string): Promise<void> {
  await m.runToEnd();
  await m.engine.sendEvent(runId, "approve", null);
  await m.runToEnd();
  expect((await m.run(runId)).status).toBe("completed");
}

const names = (spans: readonly ReadableSpan[]) => spans.map((span) => span.name);
const count = (spans: readonly ReadableSpan[], name: string) => names(spans).filter((n) => n === name).length;

describe("OpenTelemetry traces", () => {
  it("puts a whole run in the trace of the caller of start(): activations, step attempts, sleep, wait and child run", async () => {
    // Prepare
    flakyCalls = 0;
    const m = manualEngine({ telemetry: openTelemetry, cacheSize: 0 });
    // Act
    const { runId, traceId } = await startInCallerSpan(m);
    await runToEnd(m, runId);
    // Assess
    const spans = otel.spans.getFinishedSpans();
    expect(new Set(spans.map((span) => span.spanContext().traceId))).toEqual(new Set([traceId]));
    const tree = spanTree(spans);
    expect(tree).toContain("handle request > start otel_traced");
    expect(tree).toContain("start otel_traced > activate otel_traced");
    expect(tree).toContain("start otel_traced > run otel_traced");
    expect(tree).toContain("activate otel_traced > step otel_flaky");
    expect(tree).toContain("activate otel_traced > sleep sleep#0");
    expect(tree).toContain("activate otel_traced > wait approve");
    expect(tree).toContain("activate otel_traced > child otel_child");
    expect(tree).toContain("activate otel_traced > activate otel_child");
    expect(tree).toContain("activate otel_child > step otel_double");
    expect(tree).toContain("step otel_double > app work");
    expect(tree.filter((line) => line.endsWith("> run otel_child"))).toEqual([
      "activate otel_traced > run otel_child",
    ]);
    const flakyAttempts = spans.filter((span) => span.name === "step otel_flaky");
    expect(
      flakyAttempts.map((span) => [span.attributes["tsworkflow.step.attempt"], span.status.code]),
    ).toEqual([
      [1, 2],
      [2, 0],
    ]);
    const retrying = spans.flatMap((span) => span.events).find((event) => event.name === "step retrying");
    expect(retrying?.attributes).toMatchObject({
      "tsworkflow.step.name": "otel_flaky",
      "tsworkflow.retry.delay_ms": 1000,
      "exception.message": "first attempt fails",
    });
    expect(count(spans, "step otel_double")).toBe(3);
    expect(count(spans, "run otel_traced")).toBe(1);
    const sleepSpan = spans.find((span) => span.name === "sleep sleep#0");
    expect(sleepSpan && sleepSpan.endTime[0] - sleepSpan.startTime[0]).toBe(60);
  });

  it("creates no second span for work already done when a crashed activation is delivered again and the run replays in a new process", async () => {
    // Prepare: the run sleeps; the activation that applied its step is delivered again (its worker died
    // after the commit), then a fresh engine (another process) over the same store takes the run on.
    flakyCalls = 1;
    const store = new MemoryStorage();
    const first = manualEngine({ telemetry: openTelemetry, store, cacheSize: 0 });
    const { runId, traceId } = await startInCallerSpan(first);
    const [start] = first.queue.takeActivations();
    if (!start) throw new Error("no start activation");
    await first.engine.activate(start);
    for (const task of first.queue.takeSteps()) await first.engine.executeStep(task);
    const [applied] = first.queue.takeActivations();
    if (!applied) throw new Error("no outcome activation");
    await first.engine.activate(applied);
    // Act: the same activation again (a redelivery), then the rest in another engine.
    await first.engine.activate({ ...applied, redelivered: true });
    const second = manualEngine({ telemetry: openTelemetry, store, cacheSize: 0 });
    second.clock.advanceTo(first.clock.now());
    for (const [key, timer] of first.timers.pending) second.timers.pending.set(key, timer);
    first.queue.takeSteps();
    await runToEnd(second, runId);
    // Assess
    const spans = otel.spans.getFinishedSpans();
    expect(new Set(spans.map((span) => span.spanContext().traceId))).toEqual(new Set([traceId]));
    expect(count(spans, "step otel_flaky")).toBe(1);
    expect(count(spans, "sleep sleep#0")).toBe(1);
    expect(count(spans, "wait approve")).toBe(1);
    expect(count(spans, "child otel_child")).toBe(1);
    expect(count(spans, "run otel_traced")).toBe(1);
    expect(count(spans, "run otel_child")).toBe(1);
    expect(count(spans, "start otel_traced")).toBe(1);
    const redelivered = spans.filter((span) => span.attributes["tsworkflow.activation.redelivered"] === true);
    expect(redelivered.map((span) => span.attributes["tsworkflow.activation.events"])).toEqual([undefined]);
  });
});

describe("OpenTelemetry metrics", () => {
  it("counts runs, step attempts and retries, and records step durations and timer lateness", async () => {
    // Prepare
    flakyCalls = 0;
    const m = manualEngine({ telemetry: openTelemetry });
    const before = await metricValues(otel);
    const delta = (values: Map<string, number>, key: string) =>
      (values.get(key) ?? 0) - (before.get(key) ?? 0);
    // Act
    const { runId } = await startInCallerSpan(m);
    await runToEnd(m, runId);
    // Assess
    const after = await metricValues(otel);
    expect(delta(after, "tsworkflow.runs.started{tsworkflow.workflow=otel_traced}")).toBe(1);
    expect(
      delta(
        after,
        "tsworkflow.runs.finished{tsworkflow.run.status=completed,tsworkflow.workflow=otel_traced}",
      ),
    ).toBe(1);
    expect(delta(after, "tsworkflow.runs.active{tsworkflow.workflow=otel_traced}")).toBe(0);
    expect(
      delta(
        after,
        "tsworkflow.step.attempts{tsworkflow.step.name=otel_flaky,tsworkflow.step.outcome=error,tsworkflow.workflow=otel_traced}",
      ),
    ).toBe(1);
    expect(
      delta(
        after,
        "tsworkflow.step.attempts{tsworkflow.step.name=otel_flaky,tsworkflow.step.outcome=ok,tsworkflow.workflow=otel_traced}",
      ),
    ).toBe(1);
    expect(
      delta(
        after,
        "tsworkflow.step.retries{tsworkflow.step.name=otel_flaky,tsworkflow.workflow=otel_traced}",
      ),
    ).toBe(1);
    expect(delta(after, "tsworkflow.timer.lateness{tsworkflow.workflow=otel_traced}")).toBe(1);
    // The start's activation and those of the step outcomes record their wait to start (a timer's does not).
    expect(
      delta(after, "tsworkflow.activation.schedule_to_start{tsworkflow.workflow=otel_traced}"),
    ).toBeGreaterThan(1);
    expect(
      delta(
        after,
        "tsworkflow.step.schedule_to_start{tsworkflow.step.name=otel_double,tsworkflow.workflow=otel_traced}",
      ),
    ).toBe(2);
  });
});

const tally = step("otel_tally", async (n: number) => n + 1);
/** Continues once (a new run of the same workflow) when given 1. */
const countedChild = workflow("otel_counted_child", async (n: number) =>
  n === 1 ? continueAsNew(2) : tally(n),
);
const countedParent = workflow("otel_counted_parent", async () => {
  const a = await runChild(countedChild, [1]);
  const b = await runChild(countedChild, [5]);
  return a + b;
});

/** A CloudWatch metrics sink that adds up each metric by name and workflow (`Name{workflow}`). */
function summingSink(): CloudWatchMetricsSink & { sums: Map<string, number> } {
  const sums = new Map<string, number>();
  return {
    sums,
    singleMetric() {
      let workflowName = "";
      return {
        addDimension: (_name, value) => {
          workflowName = value;
        },
        addMetric: (name, _unit, value) => {
          const key = `${name}{${workflowName}}`;
          sums.set(key, (sums.get(key) ?? 0) + value);
        },
      };
    },
  };
}

/**
 * Runs `countedParent` to its end with every first activation of a run (the parent's, each child's, the
 * continuation's) delivered three times: by two engines over the same store at once (another process got
 * the same message), then again (a redelivery); every activation replays the run from its log.
 */
async function runWithStartsDeliveredThrice(telemetry: TelemetryFactory): Promise<void> {
  const store = new MemoryStorage();
  const m = manualEngine({ telemetry, store, cacheSize: 0 });
  const other = manualEngine({ telemetry, store, cacheSize: 0 });
  // Started twice with one key: one run.
  const { runId } = await m.engine.start(countedParent, [], { idempotencyKey: "counted" });
  await m.engine.start(countedParent, [], { idempotencyKey: "counted" });
  for (;;) {
    const activations: ActivationTask[] = [...m.queue.takeActivations(), ...other.queue.takeActivations()];
    const steps = [...m.queue.takeSteps(), ...other.queue.takeSteps()];
    if (activations.length === 0 && steps.length === 0) break;
    for (const task of activations) {
      if (task.cause.kind !== "start") {
        await m.engine.activate(task);
        continue;
      }
      await Promise.all([m.engine.activate(task), other.engine.activate(task)]);
      await m.engine.activate({ ...task, redelivered: true });
    }
    for (const task of steps) await m.engine.executeStep(task);
  }
  expect((await m.run(runId)).status).toBe("completed");
}

describe("Runs started", () => {
  it("counts each run started once, child runs and continuations included, however often its first activation is delivered, in OpenTelemetry and CloudWatch alike", async () => {
    // Prepare
    const before = await metricValues(otel);
    const delta = (values: Map<string, number>, key: string) =>
      (values.get(key) ?? 0) - (before.get(key) ?? 0);
    const sink = summingSink();
    // Act: the same runs once with each telemetry.
    await runWithStartsDeliveredThrice(openTelemetry);
    await runWithStartsDeliveredThrice(cloudWatchMetrics(sink));
    // Assess: the parent, two child runs and the first child's continuation.
    const after = await metricValues(otel);
    const started = (name: string) => delta(after, `tsworkflow.runs.started{tsworkflow.workflow=${name}}`);
    const active = (name: string) => delta(after, `tsworkflow.runs.active{tsworkflow.workflow=${name}}`);
    const finished = (name: string, status: string) =>
      delta(after, `tsworkflow.runs.finished{tsworkflow.run.status=${status},tsworkflow.workflow=${name}}`);
    expect([started("otel_counted_parent"), started("otel_counted_child")]).toEqual([1, 3]);
    expect([
      finished("otel_counted_child", "completed"),
      finished("otel_counted_child", "continued"),
    ]).toEqual([2, 1]);
    expect([active("otel_counted_parent"), active("otel_counted_child")]).toEqual([0, 0]);
    expect(Object.fromEntries([...sink.sums].filter(([key]) => key.startsWith("Runs")))).toEqual({
      "RunsStarted{otel_counted_parent}": 1,
      "RunsCompleted{otel_counted_parent}": 1,
      "RunsStarted{otel_counted_child}": 3,
      "RunsCompleted{otel_counted_child}": 2,
      "RunsContinued{otel_counted_child}": 1,
    });
  });
});

let failNext = { step: false, workflow: false };
const failsOnce = step("otel_fails_once", async () => {
  if (failNext.step) {
    failNext.step = false;
    throw new FatalError("the step fails this once");
  }
  return 1;
});
/** Fails once through its step's failure, or once by throwing itself (a retry without a step to run again). */
const retried = workflow("otel_retried", async () => {
  const value = await failsOnce();
  if (failNext.workflow) {
    failNext.workflow = false;
    throw new Error("the workflow fails this once");
  }
  return value;
});

/** One run at a time, holding its slot until the event "go". */
const retriedOneAtATime = workflow(
  "otel_retried_one_at_a_time",
  async () => {
    const value = await failsOnce();
    await waitForEvent("go");
    return value;
  },
  { concurrency: { limit: 1 } },
);

describe("Runs active", () => {
  it("counts a retried run of a limited workflow as active again once it has its slot, not while it waits for it", async () => {
    // Prepare: A fails and gives its slot back; B takes it and holds it.
    const before = await metricValues(otel);
    const active = async () =>
      ((await metricValues(otel)).get(
        "tsworkflow.runs.active{tsworkflow.workflow=otel_retried_one_at_a_time}",
      ) ?? 0) - (before.get("tsworkflow.runs.active{tsworkflow.workflow=otel_retried_one_at_a_time}") ?? 0);
    const m = manualEngine({
      telemetry: openTelemetry,
      cacheSize: 0,
      runLimits: new RunLimits({ slots: new MemorySlotStore() }),
    });
    failNext = { step: true, workflow: false };
    const { runId: a } = await m.engine.start(retriedOneAtATime, []);
    await m.runQueued();
    const { runId: b } = await m.engine.start(retriedOneAtATime, []);
    await m.runQueued();

    // Act
    await retryRun(m.engine, a);
    await m.runQueued();
    const waiting = [(await m.run(a)).status, await active()];
    await m.engine.sendEvent(b, "go", null);
    await m.runQueued();
    const letIn = [(await m.run(a)).status, await active()];
    await m.engine.sendEvent(a, "go", null);
    await m.runQueued();

    // Assess
    expect(waiting).toEqual(["pending", 1]);
    expect(letIn).toEqual(["suspended", 1]);
    expect([(await m.run(a)).status, await active()]).toEqual(["completed", 0]);
  });

  it("counts a failed run that retryRun took back as active again, once however often its activation is delivered, so that its second end leaves runs.active where it was", async () => {
    // Prepare: two runs fail, one at its step, one in the workflow itself; every activation replays.
    const before = await metricValues(otel);
    const delta = (values: Map<string, number>, key: string) =>
      (values.get(key) ?? 0) - (before.get(key) ?? 0);
    const m = manualEngine({ telemetry: openTelemetry, cacheSize: 0 });
    failNext = { step: true, workflow: false };
    const { runId: stepFailed } = await m.engine.start(retried, []);
    await m.runQueued();
    failNext = { step: false, workflow: true };
    const { runId: workflowFailed } = await m.engine.start(retried, []);
    await m.runQueued();
    const failed = await metricValues(otel);
    // Act: both are retried; the activation after each retry is delivered twice (a redelivery).
    for (const runId of [stepFailed, workflowFailed]) {
      await retryRun(m.engine, runId);
      for (const task of m.queue.takeActivations()) {
        await m.engine.activate(task);
        await m.engine.activate({ ...task, redelivered: true });
      }
      await m.runQueued();
    }
    // Assess
    expect([(await m.run(stepFailed)).status, (await m.run(workflowFailed)).status]).toEqual([
      "completed",
      "completed",
    ]);
    const after = await metricValues(otel);
    const active = "tsworkflow.runs.active{tsworkflow.workflow=otel_retried}";
    expect([delta(failed, active), delta(after, active)]).toEqual([0, 0]);
    expect(delta(after, "tsworkflow.runs.started{tsworkflow.workflow=otel_retried}")).toBe(2);
    const finished = (status: string) =>
      delta(
        after,
        `tsworkflow.runs.finished{tsworkflow.run.status=${status},tsworkflow.workflow=otel_retried}`,
      );
    expect([finished("failed"), finished("completed")]).toEqual([2, 2]);
  });
});
