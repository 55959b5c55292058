import { describe, expect, it, vi } from "vitest";
import { InProcessQueue } from "../../lib/adapters/in-process/in-process-queue.ts";
import { LocalTimers } from "../../lib/adapters/in-process/local-timers.ts";
import type { ActivationTask, StepTask } from "../../lib/ports/task-queue.ts";
import { VirtualClock } from "../../lib/testing/virtual-clock.ts";
import { describeTaskQueueContract } from "./task-queue-contract.ts";
import { describeTimersContract } from "./timers-contract.ts";

/** The in-process queue with a consumer that records every task. */
function recordingQueue() {
  const queue = new InProcessQueue();
  const activations: ActivationTask[] = [];
  const steps: StepTask[] = [];
  queue.consume({
    activate: async (task) => {
      activations.push(structuredClone(task));
    },
    executeStep: async (task) => {
      steps.push(structuredClone(task));
    },
  });
  return { queue, activations, steps };
}

describeTaskQueueContract("InProcessQueue", {
  async create() {
    const { queue, activations, steps } = recordingQueue();
    return {
      queue,
      async delivered() {
        await queue.idle();
        return { activations: [...activations], steps: [...steps] };
      },
      close: () => queue.close(),
    };
  },
});

describeTimersContract("LocalTimers (manual, as time skipping drives them)", {
  delayMs: 60_000,
  marginMs: 1,
  async create() {
    const { queue, activations } = recordingQueue();
    const clock = new VirtualClock(Date.UTC(2030, 0, 1));
    const timers = new LocalTimers(queue, clock, "manual");
    return {
      timers,
      now: () => clock.now(),
      async advanceTo(time) {
        clock.advanceTo(time);
        await timers.fireDue(clock.now());
        await queue.idle();
        return [...activations];
      },
      close: () => queue.close(),
    };
  },
});

describeTimersContract("LocalTimers (real time)", {
  delayMs: 300,
  marginMs: 100,
  async create() {
    const { queue, activations } = recordingQueue();
    const clock = { now: () => Date.now() };
    const timers = new LocalTimers(queue, clock);
    return {
      timers,
      now: () => clock.now(),
      async advanceTo(time) {
        const wait = time - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        await queue.idle();
        return [...activations];
      },
      async close() {
        await queue.close();
      },
    };
  },
});

describe("InProcessQueue retrying an activation that throws", () => {
  it("waits twice as long after each failure in a row, up to maxRetryDelayMs, and from the start once one succeeds", async () => {
    // Prepare: an activation that throws four times (a full disk), then succeeds, then throws once more.
    const queue = new InProcessQueue({ retryDelayMs: 20, maxRetryDelayMs: 60 });
    let attempts = 0;
    queue.consume({
      activate: async () => {
        attempts += 1;
        if (attempts <= 4 || attempts === 6) throw new Error("ENOSPC");
      },
      executeStep: async () => {},
      onActivationError: () => "retry",
    });
    const setTimeoutSpy = vi.spyOn(globalThis, "setTimeout");
    // Act
    await queue.enqueueActivation({ runId: "run_a", cause: { kind: "wake" } });
    await queue.idle();
    await queue.enqueueActivation({ runId: "run_a", cause: { kind: "wake" } });
    await queue.idle();
    // Assess: waits of 20, 40, 60 (not 80) and 60 ms, then 20 ms again after the success.
    const waits = setTimeoutSpy.mock.calls.map((call) => call[1]);
    setTimeoutSpy.mockRestore();
    expect(attempts).toBe(7);
    expect(waits).toEqual([20, 40, 60, 60, 20]);
    await queue.close();
  });
});
