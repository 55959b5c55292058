import { sleep, step, type WorkflowEvent, waitForEvent, workflow } from "tsworkflow";
import { describe, expect, it } from "vitest";
import { type DecideOptions, decide, type Inbox } from "../../lib/engine/decide.ts";
import { RunExecution } from "../../lib/engine/execution.ts";
import type { RunStatus, StepOutcome } from "../../lib/ports/event-store.ts";
import { inboxIds } from "../../lib/ports/inbox.ts";

/**
 * `decide` is the engine's decision core: a run's live execution and what an activation brings in, out
 * come the events to commit and what to send after. No store, queue or clock: these tests drive it by hand.
 */

const T0 = Date.parse("2030-01-01T00:00:00.000Z");
const limits = (now: number): DecideOptions => ({
  now,
  maxEventsPerRun: 1000,
  warnEventsPerRun: 900,
  budget: { take: Infinity, taken: 0 },
});

const reserve = step("decide_reserve", async (sku: string) => `r-${sku}`);
const flaky = step("decide_flaky", async () => 1, { maxRetries: 2, retryDelay: "10s" });
const order = workflow("decide_order", async (sku: string) => {
  const reservation = await reserve(sku);
  await sleep("1m");
  return reservation;
});
const approval = workflow("decide_approval", async () => waitForEvent("approved", { timeout: "1h" }));
const retried = workflow("decide_retried", async () => flaky(), { maxDuration: "1d" });

function started(workflowName: string, input: unknown[], extra: Partial<WorkflowEvent> = {}): WorkflowEvent {
  return {
    runId: "run_decide",
    seq: 1,
    timestamp: new Date(T0).toISOString(),
    type: "workflow_started",
    workflowName,
    input,
    ...extra,
  } as WorkflowEvent;
}

/** A run's live execution after `events` were committed, loaded by an activation at `now`. */
async function executionOf(
  definition: Parameters<typeof RunExecution.replay>[0],
  events: WorkflowEvent[],
  status: RunStatus = "pending",
  now = T0,
) {
  return RunExecution.replay(definition, events, { now, status });
}

const outcome = (stepId: string, attempt: number, fields: Partial<StepOutcome>): StepOutcome =>
  ({
    runId: "run_decide",
    stepId,
    attempt,
    recordedAt: new Date(T0).toISOString(),
    ...fields,
  }) as StepOutcome;

describe("decide", () => {
  it("starts a fresh run's first step, stamps the events with the activation's time and offers the step to run inline", async () => {
    // Prepare
    const execution = await executionOf(order, [started("decide_order", ["sku-1"])], "pending", T0 + 5_000);
    const now = T0 + 5_000;
    const inbox: Inbox = { cause: { kind: "start" }, redelivered: false, outcomes: [] };

    // Act
    const decision = await decide(execution, inbox, limits(now));

    // Assert
    expect(decision.events.map((event) => [event.type, event.seq, event.timestamp])).toEqual([
      ["step_started", 2, new Date(now).toISOString()],
    ]);
    expect(decision.status).toBe("running");
    expect(decision.terminal).toBeUndefined();
    expect(decision.sends).toEqual([
      { type: "step", wait: expect.objectContaining({ stepId: "decide_reserve#0" }) },
    ]);
    expect(decision.inline?.stepId).toBe("decide_reserve#0");
  });

  it("applies a step's outcome, suspends on the sleep that follows and asks for its timer", async () => {
    // Prepare
    const first = await executionOf(order, [started("decide_order", ["sku-1"])]);
    const { events } = await decide(first, { cause: { kind: "start" }, outcomes: [] }, limits(T0));
    const execution = await executionOf(order, [started("decide_order", ["sku-1"]), ...events], "running");
    const now = T0 + 2_000;
    const inbox: Inbox = {
      cause: { kind: "outcome", stepId: "decide_reserve#0", attempt: 1 },
      redelivered: false,
      outcomes: [outcome("decide_reserve#0", 1, { ok: true, result: "r-sku-1" })],
    };

    // Act
    const decision = await decide(execution, inbox, limits(now));

    // Assert
    expect(decision.events.map((event) => event.type)).toEqual([
      "step_completed",
      "sleep_created",
      "workflow_suspended",
    ]);
    expect(decision.events.at(-1)).toMatchObject({
      waitingFor: [`sleep#0 until ${new Date(now + 60_000).toISOString()}`],
      resumeAt: now + 60_000,
    });
    expect(decision.status).toBe("suspended");
    expect(decision.sends).toEqual([{ type: "timer", timerId: "sleep#0", fireAt: now + 60_000 }]);
    expect(decision.inline).toBeUndefined();
  });

  it("sends everything the run waits for again when a redelivered cause is already in the log, and appends nothing", async () => {
    // Prepare: the step's outcome was applied by this activation's first delivery, which died before its sends.
    const log = [started("decide_order", ["sku-1"])];
    const first = await executionOf(order, log);
    log.push(...(await decide(first, { cause: { kind: "start" }, outcomes: [] }, limits(T0))).events);
    const second = await executionOf(order, log, "running");
    const cause = { kind: "outcome", stepId: "decide_reserve#0", attempt: 1 } as const;
    const outcomes = [outcome("decide_reserve#0", 1, { ok: true, result: "r-sku-1" })];
    log.push(...(await decide(second, { cause, redelivered: false, outcomes }, limits(T0))).events);
    const execution = await executionOf(order, log, "suspended");

    // Act
    const again = await decide(execution, { cause, redelivered: true, outcomes }, limits(T0 + 1));
    const firstDelivery = await decide(
      await executionOf(order, log, "suspended"),
      { cause, redelivered: false, outcomes },
      limits(T0 + 1),
    );

    // Assert
    expect(again.events).toEqual([]);
    expect(again.sends).toEqual([{ type: "timer", timerId: "sleep#0", fireAt: T0 + 60_000 }]);
    expect(firstDelivery.sends).toEqual([]);
  });

  it("retries a failed attempt after the policy's delay, then starts the next attempt once its timer is due", async () => {
    // Prepare
    const log = [started("decide_retried", [], { deadline: T0 + 86_400_000 } as Partial<WorkflowEvent>)];
    const fresh = await decide(
      await executionOf(retried, log),
      { cause: { kind: "start" }, outcomes: [] },
      limits(T0),
    );
    log.push(...fresh.events);
    const failure = outcome("decide_flaky#0", 1, {
      ok: false,
      error: { name: "RetryableError", message: "busy", code: "RETRYABLE" },
    });

    // Act
    const failed = await decide(
      await executionOf(retried, log, "running"),
      { cause: { kind: "outcome", stepId: "decide_flaky#0", attempt: 1 }, outcomes: [failure] },
      limits(T0 + 1_000),
    );
    log.push(...failed.events);
    const due = await decide(
      await executionOf(retried, log, "suspended"),
      { cause: { kind: "timer", timerId: "retry:decide_flaky#0:2" }, outcomes: [] },
      limits(T0 + 11_000),
    );

    // Assert
    expect(fresh.sends).toContainEqual({ type: "timer", timerId: "deadline", fireAt: T0 + 86_400_000 });
    expect(failed.events.map((event) => event.type)).toEqual(["step_retrying", "workflow_suspended"]);
    expect(failed.events[0]).toMatchObject({ delayMs: 10_000, retryAt: T0 + 11_000, nextAttempt: 2 });
    expect(failed.sends).toEqual([{ type: "timer", timerId: "retry:decide_flaky#0:2", fireAt: T0 + 11_000 }]);
    expect(due.events.map((event) => event.type)).toEqual(["workflow_resumed", "step_started"]);
    expect(due.events[1]).toMatchObject({ stepId: "decide_flaky#0", attempt: 2 });
    expect(due.sends).toEqual([{ type: "step", wait: expect.objectContaining({ attempt: 2 }) }]);
  });

  it("ends a cancelled run and names every timer it had armed, its deadline included, to cancel", async () => {
    // Prepare
    const log = [started("decide_approval", [], { deadline: T0 + 86_400_000 } as Partial<WorkflowEvent>)];
    log.push(
      ...(
        await decide(await executionOf(approval, log), { cause: { kind: "start" }, outcomes: [] }, limits(T0))
      ).events,
    );
    const cancel = outcome(inboxIds.cancel, 1, { ok: true, result: { reason: "changed my mind" } });

    // Act
    const decision = await decide(
      await executionOf(approval, log, "suspended"),
      { cause: { kind: "outcome", stepId: inboxIds.cancel, attempt: 1 }, outcomes: [cancel] },
      limits(T0 + 1_000),
    );

    // Assert
    expect(decision.events.map((event) => event.type)).toEqual([
      "workflow_resumed",
      "cancel_requested",
      "workflow_cancelled",
    ]);
    expect(decision.status).toBe("cancelled");
    expect(decision.terminal).toMatchObject({ type: "workflow_cancelled", reason: "changed my mind" });
    expect(decision.sends).toEqual([]);
    expect(decision.cancelledTimers.sort()).toEqual(["deadline", "hook:approved#0"]);
  });

  it("delivers the event stored first to the wait for its name, once, whatever order the inbox lists events in", async () => {
    // Prepare
    const log = [started("decide_approval", [])];
    log.push(
      ...(
        await decide(await executionOf(approval, log), { cause: { kind: "start" }, outcomes: [] }, limits(T0))
      ).events,
    );
    const event = (id: string, by: string, at: number) =>
      outcome(inboxIds.signal("approved", id), 1, {
        ok: true,
        result: { name: "approved", payload: { by } },
        recordedAt: new Date(at).toISOString(),
      });
    const [first, second] = [event("a1", "ana", T0 + 1), event("a2", "bo", T0 + 2)];
    const cause = { kind: "outcome", stepId: second.stepId, attempt: 1 } as const;

    // Act
    const decision = await decide(
      await executionOf(approval, log, "suspended"),
      { cause, outcomes: [second, first] },
      limits(T0 + 3),
    );

    // Assert
    expect(decision.events.map((e) => e.type)).toEqual([
      "workflow_resumed",
      "hook_received",
      "workflow_completed",
    ]);
    expect(decision.events[1]).toMatchObject({ signalId: first.stepId, payload: { by: "ana" } });
    expect(decision.terminal).toMatchObject({ result: { by: "ana" } });
  });

  for (const { stored, offset, wins, ends } of [
    { stored: "1 ms before the deadline", offset: -1, wins: "hook_received", ends: "workflow_completed" },
    { stored: "at the deadline", offset: 0, wins: "hook_timed_out", ends: "workflow_failed" },
  ])
    it(`lets an event stored ${stored} decide a wait whose timeout's timer fired first: ${wins}`, async () => {
      // Prepare: the wait's timeout is due; the event's own activation has not come (lost or late).
      const log = [started("decide_approval", [])];
      log.push(
        ...(
          await decide(
            await executionOf(approval, log),
            { cause: { kind: "start" }, outcomes: [] },
            limits(T0),
          )
        ).events,
      );
      const deadline = T0 + 3_600_000;
      const event = outcome(inboxIds.signal("approved", "e1"), 1, {
        ok: true,
        result: { name: "approved", payload: "yes" },
        recordedAt: new Date(deadline + offset).toISOString(),
      });

      // Act
      const decision = await decide(
        await executionOf(approval, log, "suspended"),
        { cause: { kind: "timer", timerId: "hook:approved#0" }, outcomes: [event] },
        limits(deadline + 5_000),
      );

      // Assert
      expect(decision.events.map((e) => e.type)).toEqual(["workflow_resumed", wins, ends]);
    });
});
