import { FatalError, RetryableError, step, type WorkflowEvent, workflow } from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { eventTuples, types } from "./support/manual-engine.ts";

type Retrying = Extract<WorkflowEvent, { type: "step_retrying" }>;

const retryingEvents = (events: WorkflowEvent[]) =>
  events.filter((e): e is Retrying => e.type === "step_retrying");

/** Failures to throw before a step succeeds, per test. */
let failuresLeft = 0;
let calls = 0;

beforeEach(() => {
  failuresLeft = 0;
  calls = 0;
});

const failThenSucceed = (error: () => Error) => async (value: string) => {
  calls += 1;
  if (failuresLeft > 0) {
    failuresLeft -= 1;
    throw error();
  }
  return `ok ${value}`;
};

const fixedStep = step(
  "retries_fixed",
  failThenSucceed(() => new Error("flaky")),
);
const fixedWorkflow = workflow("retries_fixed_workflow", async (value: string) => fixedStep(value));

const exponentialStep = step(
  "retries_exponential",
  failThenSucceed(() => new Error("still flaky")),
  { maxRetries: 5, retryDelay: "exponential" },
);
const exponentialWorkflow = workflow("retries_exponential_workflow", async (value: string) =>
  exponentialStep(value),
);

const cappedStep = step(
  "retries_capped",
  failThenSucceed(() => new Error("capped")),
  { maxRetries: 6, retryDelay: "exponential", maxRetryDelay: "3s" },
);
const cappedWorkflow = workflow("retries_capped_workflow", async (value: string) => cappedStep(value));

const customStep = step(
  "retries_custom",
  failThenSucceed(() => new Error("custom")),
  { retryDelay: "5s" },
);
const customWorkflow = workflow("retries_custom_workflow", async (value: string) => customStep(value));

const rateLimitedStep = step(
  "retries_rate_limited",
  failThenSucceed(() => new RetryableError("rate limited", { retryAfter: "30s" })),
  { retryDelay: "exponential" },
);
const rateLimitedWorkflow = workflow("retries_rate_limited_workflow", async (value: string) =>
  rateLimitedStep(value),
);

const fatalStep = step(
  "retries_fatal",
  failThenSucceed(() => new FatalError("card declined")),
  { maxRetries: 5 },
);
const fatalWorkflow = workflow("retries_fatal_workflow", async (value: string) => fatalStep(value));

const exhaustedStep = step(
  "retries_exhausted",
  failThenSucceed(() => new Error("service down")),
  { maxRetries: 2, retryDelay: "1s" },
);
const exhaustedWorkflow = workflow("retries_exhausted_workflow", async (value: string) =>
  exhaustedStep(value),
);

const fallback = step("retries_fallback", async (reason: string) => `fallback after: ${reason}`);
const catchingWorkflow = workflow("retries_catching_workflow", async (value: string) => {
  try {
    return await fatalStep(value);
  } catch (error) {
    const isFatal = error instanceof FatalError;
    return { isFatal, name: (error as Error).name, next: await fallback((error as Error).message) };
  }
});
const catchingExhaustedWorkflow = workflow("retries_catching_exhausted_workflow", async (value: string) => {
  try {
    return await exhaustedStep(value);
  } catch (error) {
    return fallback((error as Error).message);
  }
});

async function runWith(wf: Parameters<typeof startLocal>[0], failures: number) {
  failuresLeft = failures;
  const storage = new MemoryStorage();
  const runId = await startLocal(wf, ["v"], { storage, timeSkipping: true });
  const record = await storage.getRun(runId);
  return { run: record, events: await storage.getEvents(runId) };
}

describe("retries", () => {
  it("retries with the fixed delay of 60 seconds by default", async () => {
    // Prepare
    // Act
    const { run, events } = await runWith(fixedWorkflow, 2);
    // Assess
    expect(run?.status).toBe("completed");
    expect(run?.result).toBe("ok v");
    expect(eventTuples(events).filter(([type]) => type?.toString().startsWith("step_"))).toEqual([
      ["step_started", "retries_fixed#0", 1],
      ["step_retrying", "retries_fixed#0", 1],
      ["step_started", "retries_fixed#0", 2],
      ["step_retrying", "retries_fixed#0", 2],
      ["step_started", "retries_fixed#0", 3],
      ["step_completed", "retries_fixed#0", 3],
    ]);
    expect(retryingEvents(events).map((e) => e.delayMs)).toEqual([60_000, 60_000]);
    expect(calls).toBe(3);
  });

  it("retries with exponential delays of 1, 2 and 4 seconds", async () => {
    // Prepare
    // Act
    const { run, events } = await runWith(exponentialWorkflow, 3);
    // Assess
    expect(run?.status).toBe("completed");
    expect(retryingEvents(events).map((e) => e.delayMs)).toEqual([1_000, 2_000, 4_000]);
  });

  it("caps exponential delays at maxRetryDelay", async () => {
    // Prepare
    // Act
    const { run, events } = await runWith(cappedWorkflow, 5);
    // Assess
    expect(run?.status).toBe("completed");
    expect(retryingEvents(events).map((e) => e.delayMs)).toEqual([1_000, 2_000, 3_000, 3_000, 3_000]);
  });

  it("waits a custom retry delay between attempts", async () => {
    // Prepare
    // Act
    const { run, events } = await runWith(customWorkflow, 2);
    // Assess
    expect(run?.status).toBe("completed");
    expect(retryingEvents(events).map((e) => e.delayMs)).toEqual([5_000, 5_000]);
  });

  it("honours a RetryableError's retryAfter over the step's retry delay", async () => {
    // Prepare
    // Act
    const { run, events } = await runWith(rateLimitedWorkflow, 2);
    // Assess
    expect(run?.status).toBe("completed");
    const retrying = retryingEvents(events);
    expect(retrying.map((e) => e.delayMs)).toEqual([30_000, 30_000]);
    expect(retrying.map((e) => [e.error.name, e.error.message])).toEqual([
      ["RetryableError", "rate limited"],
      ["RetryableError", "rate limited"],
    ]);
  });

  it("records the attempt, the next attempt, the delay and the time of the retry in step_retrying", async () => {
    // Prepare
    // Act
    const { events } = await runWith(customWorkflow, 2);
    // Assess
    const retrying = retryingEvents(events);
    expect(retrying.map((e) => [e.attempt, e.nextAttempt, e.delayMs])).toEqual([
      [1, 2, 5_000],
      [2, 3, 5_000],
    ]);
    for (const event of retrying) {
      expect(event.retryAt).toBe(Date.parse(event.timestamp) + event.delayMs);
      expect(event.error).toMatchObject({ name: "Error", message: "custom" });
      const next = events.find(
        (e) => e.type === "step_started" && e.stepId === event.stepId && e.attempt === event.nextAttempt,
      );
      expect(Date.parse(next?.timestamp ?? "")).toBeGreaterThanOrEqual(event.retryAt);
    }
    const suspended = events.filter((e) => e.type === "workflow_suspended");
    expect(suspended.map((e) => e.type === "workflow_suspended" && e.resumeAt)).toEqual(
      retrying.map((e) => e.retryAt),
    );
  });

  it("fails a step at once on FatalError and fails the workflow with its message", async () => {
    // Prepare
    // Act
    const { run, events } = await runWith(fatalWorkflow, 1);
    // Assess
    expect(calls).toBe(1);
    expect(run?.status).toBe("failed");
    expect(run?.error).toMatchObject({ name: "FatalError", message: "card declined", code: "FATAL" });
    expect(eventTuples(events)).toEqual([
      ["workflow_started"],
      ["step_started", "retries_fatal#0", 1],
      ["step_failed", "retries_fatal#0", 1],
      ["workflow_failed"],
    ]);
    const failed = events.at(-1);
    expect(failed?.type === "workflow_failed" && failed.error.name).toBe("FatalError");
  });

  it("fails the step and then the workflow once maxRetries are used up", async () => {
    // Prepare
    // Act
    const { run, events } = await runWith(exhaustedWorkflow, 10);
    // Assess
    expect(calls).toBe(3);
    expect(run?.status).toBe("failed");
    expect(run?.error).toMatchObject({ name: "Error", message: "service down" });
    expect(eventTuples(events)).toEqual([
      ["workflow_started"],
      ["step_started", "retries_exhausted#0", 1],
      ["step_retrying", "retries_exhausted#0", 1],
      ["workflow_suspended"],
      ["workflow_resumed"],
      ["step_started", "retries_exhausted#0", 2],
      ["step_retrying", "retries_exhausted#0", 2],
      ["workflow_suspended"],
      ["workflow_resumed"],
      ["step_started", "retries_exhausted#0", 3],
      ["step_failed", "retries_exhausted#0", 3],
      ["workflow_failed"],
    ]);
  });

  it("lets a workflow catch a failed step and go on to complete", async () => {
    // Prepare
    // Act
    const { run, events } = await runWith(catchingWorkflow, 1);
    // Assess
    expect(run?.status).toBe("completed");
    expect(run?.result).toEqual({ isFatal: true, name: "FatalError", next: "fallback after: card declined" });
    expect(types(events)).toEqual([
      "workflow_started",
      "step_started",
      "step_failed",
      "step_started",
      "step_completed",
      "workflow_completed",
    ]);
  });

  it("lets a workflow catch a step that used up its retries", async () => {
    // Prepare
    // Act
    const { run, events } = await runWith(catchingExhaustedWorkflow, 10);
    // Assess
    expect(run?.status).toBe("completed");
    expect(run?.result).toBe("fallback after: service down");
    expect(events.filter((e) => e.type === "step_failed")).toHaveLength(1);
  });

  it("fails a step at once on a subclass of FatalError with a name of its own, and the workflow sees that class", async () => {
    // Prepare
    class CardDeclined extends FatalError {
      override name = "CardDeclined";
    }
    const declining = step("retries_card_declined", async () => {
      calls += 1;
      throw new CardDeclined("insufficient funds");
    });
    const seen: unknown[] = [];
    const wf = workflow("retries_card_declined_workflow", async () => {
      try {
        return await declining();
      } catch (error) {
        seen.push({
          fatal: error instanceof FatalError,
          name: (error as Error).name,
          code: (error as FatalError).code,
          message: (error as Error).message,
        });
        throw error;
      }
    });
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(wf, [], { storage, timeSkipping: true });
    // Assess
    const run = await storage.getRun(runId);
    const events = await storage.getEvents(runId);
    expect(calls).toBe(1);
    expect(eventTuples(events)).toEqual([
      ["workflow_started"],
      ["step_started", "retries_card_declined#0", 1],
      ["step_failed", "retries_card_declined#0", 1],
      ["workflow_failed"],
    ]);
    expect(run?.error).toMatchObject({ name: "CardDeclined", code: "FATAL", message: "insufficient funds" });
    const expected = { fatal: true, name: "CardDeclined", code: "FATAL", message: "insufficient funds" };
    expect(seen).toEqual([expected]);
  });

  it("still retries an error merely named FatalError that is not one", async () => {
    // Prepare
    failuresLeft = 1;
    const impostor = step(
      "retries_impostor",
      failThenSucceed(() => Object.assign(new Error("looks fatal"), { name: "FatalError" })),
      { retryDelay: "1s" },
    );
    const wf = workflow("retries_impostor_workflow", async (value: string) => impostor(value));
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(wf, ["x"], { storage, timeSkipping: true });
    // Assess
    expect(calls).toBe(2);
    expect((await storage.getRun(runId))?.result).toBe("ok x");
  });
});
