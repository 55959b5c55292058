import { type EventType, InvalidEventError, step, type WorkflowEvent, workflow } from "tsworkflow";
import { EVENT_TYPES, parseEvent, workflowEvent } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { describe, expect, it } from "vitest";

const SEED_TYPES = [
  "workflow_started",
  "workflow_completed",
  "workflow_failed",
  "workflow_suspended",
  "workflow_resumed",
  "step_started",
  "step_completed",
  "step_failed",
  "step_retrying",
  "sleep_created",
  "sleep_completed",
  "log_info",
  "log_warning",
  "log_error",
  "log_debug",
] as const;

const base = { runId: "run_events_1", timestamp: "2030-01-01T00:00:00.000Z" };
const stepRef = { stepId: "charge#0", stepName: "charge", attempt: 1 };
const error = { name: "Error", message: "boom" };

/** One valid example of each seed event type. */
const EXAMPLES: Record<(typeof SEED_TYPES)[number], Record<string, unknown>> = {
  workflow_started: { type: "workflow_started", workflowName: "wf", input: ["a", 1] },
  workflow_completed: { type: "workflow_completed", result: { ok: true } },
  workflow_failed: { type: "workflow_failed", error },
  workflow_suspended: { type: "workflow_suspended", waitingFor: ["sleep#0 until 2030-01-02"], resumeAt: 1 },
  workflow_resumed: { type: "workflow_resumed" },
  step_started: { type: "step_started", ...stepRef, input: [42] },
  step_completed: { type: "step_completed", ...stepRef, result: "done" },
  step_failed: { type: "step_failed", ...stepRef, error },
  step_retrying: {
    type: "step_retrying",
    ...stepRef,
    error,
    delayMs: 1000,
    retryAt: 1_893_456_001_000,
    nextAttempt: 2,
  },
  sleep_created: { type: "sleep_created", sleepId: "sleep#0", durationMs: 5000, resumeAt: 1_893_456_005_000 },
  sleep_completed: { type: "sleep_completed", sleepId: "sleep#0" },
  log_info: { type: "log_info", message: "hello", data: { a: 1 } },
  log_warning: { type: "log_warning", message: "careful" },
  log_error: { type: "log_error", message: "bad" },
  log_debug: { type: "log_debug", message: "details" },
};

describe("the event model", () => {
  it("has all 15 seed event types in EVENT_TYPES", () => {
    // Prepare
    // Act
    const types = new Set<string>(EVENT_TYPES);
    // Assess
    for (const type of SEED_TYPES) expect(types.has(type), type).toBe(true);
    expect(EVENT_TYPES.length).toBeGreaterThanOrEqual(15);
  });

  it.each(SEED_TYPES.map((type, index) => [type, index + 1] as const))(
    "validates a well-formed %s event",
    (type, seq) => {
      // Prepare
      const raw = { ...base, seq, ...EXAMPLES[type] };
      // Act
      const event = parseEvent(raw, "a test");
      // Assess
      expect(event.type).toBe(type satisfies EventType);
      expect(event).toEqual(raw);
      expect(workflowEvent.safeParse(raw).success).toBe(true);
    },
  );

  it.each([
    ["an unknown type", { ...base, seq: 1, type: "workflow_exploded" }, "type"],
    [
      "a step event without its step id",
      { ...base, seq: 2, type: "step_completed", stepName: "x", attempt: 1 },
      "stepId",
    ],
    ["a seq of zero", { ...base, seq: 0, type: "workflow_resumed" }, "seq"],
    ["an attempt of zero", { ...base, seq: 3, ...EXAMPLES.step_started, attempt: 0 }, "attempt"],
    ["a negative retry delay", { ...base, seq: 4, ...EXAMPLES.step_retrying, delayMs: -5 }, "delayMs"],
    ["a log without a message", { ...base, seq: 5, type: "log_info" }, "message"],
  ])("rejects %s with an InvalidEventError naming the field", (_what, raw, field) => {
    // Prepare
    let caught: unknown;
    // Act
    try {
      parseEvent(raw, "run run_events_1 (event 7)");
    } catch (caughtError) {
      caught = caughtError;
    }
    // Assess
    expect(caught).toBeInstanceOf(InvalidEventError);
    expect((caught as Error).message).toContain("run run_events_1 (event 7)");
    expect((caught as Error).message).toContain(field);
  });

  it("rejects an invalid event on commit and leaves the log as it was", async () => {
    // Prepare
    const echo = step("events_echo", async (value: string) => value);
    const echoWorkflow = workflow("events_echo_workflow", async (value: string) => echo(value));
    const storage = new MemoryStorage();
    const runId = await startLocal(echoWorkflow, ["hi"], { storage });
    const before = await storage.getEvents(runId);
    const run = await storage.getRun(runId);
    const invalid = {
      runId,
      seq: before.length + 1,
      timestamp: new Date().toISOString(),
      type: "log_info",
    } as unknown as WorkflowEvent;
    // Act
    const commit = storage.commit(runId, run?.version ?? 0, [invalid], {
      status: "completed",
      updatedAt: invalid.timestamp,
    });
    // Assess
    await expect(commit).rejects.toThrow(InvalidEventError);
    expect(await storage.getEvents(runId)).toEqual(before);
    expect(await storage.getRun(runId)).toEqual(run);
  });

  it("gives every event of a run its run id and consecutive seq numbers from 1", async () => {
    // Prepare
    const twice = step("events_twice", async (value: number) => value * 2);
    const twiceWorkflow = workflow("events_twice_workflow", async (value: number) =>
      twice(await twice(value)),
    );
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(twiceWorkflow, [3], { storage });
    // Assess
    const events = await storage.getEvents(runId);
    expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
    expect(new Set(events.map((event) => event.runId))).toEqual(new Set([runId]));
    for (const event of events) expect(Number.isNaN(Date.parse(event.timestamp))).toBe(false);
    expect((await storage.getRun(runId))?.result).toBe(12);
  });
});
