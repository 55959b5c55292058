import { readFileSync } from "node:fs";
import { sleep, step, type WorkflowEvent, workflow } from "tsworkflow";
import { replayHistory } from "tsworkflow/testing";
import { describe, expect, it } from "vitest";
import { Registry } from "../../lib/core/registry.ts";
import { type DecideOptions, decide } from "../../lib/engine/decide.ts";
import { RunExecution } from "../../lib/engine/execution.ts";
import { retriedAttempts } from "../../lib/engine/retry-attempt.ts";
import type { RunStatus } from "../../lib/ports/event-store.ts";
import { deadlineWorkflow } from "./support/golden.ts";

/**
 * When a run's `maxDuration` runs out: counted from the activation that lets the run in (a run in line for its
 * concurrency slot or its start waits without it running), and again from the one that lets a retried run go
 * on. Logs written before `workflow_started` recorded `maxDurationMs` hold an absolute `deadline`, which they
 * keep. Driven through `decide` and the replay, with no store, queue or clock.
 */

const T0 = Date.parse("2030-01-01T00:00:00.000Z");
const HOUR = 3_600_000;
const at = (time: number) => new Date(time).toISOString();
const options = (now: number): DecideOptions => ({
  now,
  maxEventsPerRun: 1000,
  warnEventsPerRun: 900,
  budget: { take: Number.POSITIVE_INFINITY, taken: 0 },
});

const lineUp = new Registry().define(() => {
  const work = step("md_work", async (label: string) => label);
  return workflow(
    "md_line_up",
    async (label: string) => {
      await work(label);
      await sleep("2h");
      return label;
    },
    { concurrency: { limit: 1 }, maxDuration: "1h" },
  );
});

function started(extra: Record<string, unknown>): WorkflowEvent {
  return {
    runId: "run_md",
    seq: 1,
    timestamp: at(T0),
    type: "workflow_started",
    workflowName: "md_line_up",
    input: ["B"],
    concurrency: { key: "run:md_line_up:", limit: 1 },
    ...extra,
  } as WorkflowEvent;
}

/** The log after the activation at `now` that let the run in, and what it decided. */
async function letIn(log: WorkflowEvent[], now: number, status: RunStatus = "pending") {
  const execution = await RunExecution.replay(lineUp, log, { now, status });
  const decision = await decide(execution, { cause: { kind: "wake" }, outcomes: [] }, options(now));
  return { execution, decision, log: [...log, ...decision.events] };
}

describe("maxDuration", () => {
  it("counts from the activation that lets a run in, not from its start: a run that waited 3 h in line gets its whole hour", async () => {
    // Prepare: the run was created at T0 and waited in line until T0 + 3 h.
    const log = [started({ maxDurationMs: HOUR })];

    // Act
    const first = await letIn(log, T0 + 3 * HOUR);
    const before = await RunExecution.replay(lineUp, first.log, {
      now: T0 + 4 * HOUR - 1,
      status: "running",
    });
    const afterHour = await RunExecution.replay(lineUp, first.log, {
      now: T0 + 4 * HOUR,
      status: "suspended",
    });
    const timer = { cause: { kind: "timer", timerId: "deadline" } as const, outcomes: [] };
    const early = await decide(before, timer, options(T0 + 4 * HOUR - 1));
    const due = await decide(afterHour, timer, options(T0 + 4 * HOUR));

    // Assess
    expect(first.execution.deadline).toBe(T0 + 4 * HOUR);
    expect(first.decision.events[0]).toMatchObject({ type: "step_started", timestamp: at(T0 + 3 * HOUR) });
    expect(first.decision.sends).toContainEqual({
      type: "timer",
      timerId: "deadline",
      fireAt: T0 + 4 * HOUR,
    });
    expect(before.deadline).toBe(T0 + 4 * HOUR);
    expect(early.terminal).toBeUndefined();
    expect(due.terminal).toMatchObject({
      type: "workflow_failed",
      error: { name: "MaxDurationExceededError" },
    });
  });

  it("counts again from when a retried run goes on: a run that failed at its deadline completes once retried", async () => {
    // Prepare: let in at T0, its step done at T0 + 1 min, then failed at its deadline (T0 + 1 h) in a 2 h sleep.
    const first = await letIn([started({ maxDurationMs: HOUR })], T0);
    const stepDone = await decide(
      await RunExecution.replay(lineUp, first.log, { now: T0 + 60_000, status: "running" }),
      {
        cause: { kind: "outcome", stepId: "md_work#0", attempt: 1 },
        outcomes: [
          {
            runId: "run_md",
            stepId: "md_work#0",
            attempt: 1,
            recordedAt: at(T0 + 60_000),
            ok: true,
            result: "B",
          },
        ],
      },
      options(T0 + 60_000),
    );
    const slept = [...first.log, ...stepDone.events];
    const overdue = await decide(
      await RunExecution.replay(lineUp, slept, { now: T0 + HOUR, status: "suspended" }),
      { cause: { kind: "timer", timerId: "deadline" }, outcomes: [] },
      options(T0 + HOUR),
    );
    const failed = [...slept, ...overdue.events];
    // Retried at T0 + 5 h (pending again: the run has a concurrency limit), in line until T0 + 7 h.
    const retried = [
      ...failed,
      {
        runId: "run_md",
        seq: failed.length + 1,
        timestamp: at(T0 + 5 * HOUR),
        type: "workflow_retried",
        retriedFailures: [],
      },
    ] as WorkflowEvent[];

    // Act
    const inLine = await RunExecution.replay(lineUp, retried, { now: T0 + 6 * HOUR, status: "pending" });
    const again = await letIn(retried, T0 + 7 * HOUR);

    // Assess: the clock does not run in line (an activation would let it in now), then runs from T0 + 7 h.
    expect(overdue.terminal).toMatchObject({ error: { name: "MaxDurationExceededError" } });
    expect(inLine.deadline).toBe(T0 + 7 * HOUR);
    expect(again.execution.deadline).toBe(T0 + 8 * HOUR);
    expect(again.decision.terminal).toMatchObject({ type: "workflow_completed", result: "B" });
  });

  it("counts a retried step's run from the commit that lets it in again, and arms its deadline there", async () => {
    // Prepare: let in at T0, its step failed at T0 + 10 min, retried at T0 + 5 h, let in again at T0 + 7 h.
    const first = await letIn([started({ maxDurationMs: HOUR })], T0);
    const error = { name: "FatalError", message: "declined", code: "FATAL" };
    const failed = [
      ...first.log,
      { ...first.log[1], seq: 3, timestamp: at(T0 + 600_000), type: "step_failed", error, input: undefined },
      { runId: "run_md", seq: 4, timestamp: at(T0 + 600_000), type: "workflow_failed", error },
      {
        runId: "run_md",
        seq: 5,
        timestamp: at(T0 + 5 * HOUR),
        type: "workflow_retried",
        retriedFailures: [3],
      },
    ] as WorkflowEvent[];
    // What `RunLimits` commits when the run holds its slot again: the step's next attempt.
    const letInAgain = [...failed, ...retriedAttempts(failed, at(T0 + 7 * HOUR))];

    // Act
    const execution = await RunExecution.replay(lineUp, letInAgain, {
      now: T0 + 7 * HOUR + 5,
      status: "running",
    });
    const recover = await decide(
      execution,
      { cause: { kind: "recover" }, outcomes: [] },
      options(T0 + 7 * HOUR + 5),
    );

    // Assess
    expect(letInAgain.at(-1)).toMatchObject({ type: "step_started", attempt: 2 });
    expect(execution.deadline).toBe(T0 + 8 * HOUR);
    expect(recover.sends).toContainEqual({ type: "timer", timerId: "deadline", fireAt: T0 + 8 * HOUR });
  });

  it("keeps the deadline that a log written before maxDurationMs recorded at start(), also after a wait and a retry", async () => {
    // Prepare: the old format (`deadline`, counted from start()), let in 3 h after its start.
    const log = [started({ deadline: T0 + HOUR })];

    // Act
    const first = await letIn(log, T0 + 3 * HOUR);
    const retried = await RunExecution.replay(
      lineUp,
      [
        ...first.log,
        {
          runId: "run_md",
          seq: first.log.length + 1,
          timestamp: at(T0 + 5 * HOUR),
          type: "workflow_retried",
        },
      ].map((event) => ({ retriedFailures: [], ...event }) as WorkflowEvent),
      { now: T0 + 5 * HOUR, status: "running" },
    );

    // Assess
    expect(first.execution.deadline).toBe(T0 + HOUR);
    expect(first.decision.terminal).toMatchObject({ error: { name: "MaxDurationExceededError" } });
    expect(retried.deadline).toBe(T0 + HOUR);
  });

  it("replays a golden history recorded before maxDurationMs, and fails it again at its recorded deadline", async () => {
    // Prepare: the run failed at its deadline, 1 d after its start, during a 2 d sleep.
    const recorded = JSON.parse(
      readFileSync(new URL("../fixtures/golden/recorded-deadline.json", import.meta.url), "utf8"),
    ) as WorkflowEvent[];
    const suspended = recorded.slice(0, 5);

    // Act
    const report = await replayHistory(deadlineWorkflow, recorded);
    const execution = await RunExecution.replay(deadlineWorkflow, suspended, {
      now: T0 + 24 * HOUR,
      status: "suspended",
    });
    const decision = await decide(
      execution,
      { cause: { kind: "timer", timerId: "deadline" }, outcomes: [] },
      options(T0 + 24 * HOUR),
    );

    // Assess
    expect(report).toMatchObject({ ok: true, events: recorded.length });
    expect(execution.deadline).toBe((recorded[0] as { deadline: number }).deadline);
    expect(decision.events.map(({ type }) => type)).toEqual(recorded.slice(5).map(({ type }) => type));
    expect(decision.terminal).toMatchObject({ error: (recorded[6] as { error: object }).error });
  });
});
