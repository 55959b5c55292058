import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ActivationCause, ActivationTask, StepTask, TaskQueue } from "../../lib/ports/task-queue.ts";

/** A queue with a consumer that records what it is given. */
export interface QueueKit {
  queue: TaskQueue;
  /** Everything delivered so far (a real queue is read until it is empty). */
  delivered(): Promise<{ activations: ActivationTask[]; steps: StepTask[] }>;
  close(): Promise<void>;
}

/** Makes a fresh, empty queue for each test. */
export interface QueueHarness {
  create(): Promise<QueueKit>;
}

const until = async <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> => {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

/**
 * True when `delivered` stands for `task`: the same cause, or a `wake` of the run (a queue may coalesce
 * the activations of one run that wait, and the engine then looks at everything the run waits for).
 */
const covers = (delivered: ActivationTask, task: ActivationTask) =>
  delivered.runId === task.runId &&
  (delivered.cause.kind === "wake" || JSON.stringify(delivered.cause) === JSON.stringify(task.cause));

/** The task without the queue's own delivery flag. */
const sent = ({ runId, cause }: ActivationTask) => ({ runId, cause });

let runs = 0;
const newRunId = () => `run_queue_${process.pid}_${++runs}`;

/** What the engine relies on from every TaskQueue adapter (in-process, BullMQ, SQS). */
export function describeTaskQueueContract(name: string, harness: QueueHarness): void {
  describe(`TaskQueue contract: ${name}`, () => {
    let kit: QueueKit;
    beforeEach(async () => {
      kit = await harness.create();
    });
    afterEach(async () => {
      await kit.close();
    });

    it("delivers an activation of every cause with its run id and cause unchanged", async () => {
      // Prepare
      const causes: ActivationCause[] = [
        { kind: "start" },
        { kind: "outcome", stepId: "charge#0", attempt: 2 },
        { kind: "timer", timerId: "sleep#1" },
        { kind: "wake" },
      ];
      const tasks = causes.map((cause) => ({ runId: newRunId(), cause }));
      // Act
      for (const task of tasks) await kit.queue.enqueueActivation(task);
      // Assess
      const { activations } = await until(
        () => kit.delivered(),
        (delivered) => delivered.activations.length >= tasks.length,
        "the activations",
      );
      expect(activations.map(sent).sort(byRun)).toEqual([...tasks].sort(byRun));
      for (const activation of activations) expect(activation.redelivered).not.toBe(true);
    });

    it("delivers a step task with every field as it was sent", async () => {
      // Prepare
      const task: StepTask = {
        runId: newRunId(),
        workflowName: "orders",
        stepId: "charge#3",
        stepName: "charge",
        attempt: 4,
        input: [
          { amount: 12.5, currency: "EUR", lines: [null, "é 💳 \uffff\t", { nested: [1, [2]] }] },
          0,
          "",
        ],
      };
      // Act
      await kit.queue.enqueueStep(task);
      // Assess
      const { steps } = await until(
        () => kit.delivered(),
        (delivered) => delivered.steps.length >= 1,
        "the step",
      );
      expect(steps).toEqual([task]);
    });

    it("delivers the tasks of many runs, none lost", async () => {
      // Prepare
      const runIds = Array.from({ length: 25 }, newRunId);
      // Act
      await Promise.all(
        runIds.flatMap((runId) => [
          kit.queue.enqueueActivation({ runId, cause: { kind: "start" } }),
          kit.queue.enqueueStep({
            runId,
            workflowName: "w",
            stepId: "s#0",
            stepName: "s",
            attempt: 1,
            input: [],
          }),
        ]),
      );
      // Assess
      const delivered = await until(
        () => kit.delivered(),
        (all) => all.activations.length >= runIds.length && all.steps.length >= runIds.length,
        "every task",
      );
      expect(new Set(delivered.activations.map((task) => task.runId))).toEqual(new Set(runIds));
      expect(new Set(delivered.steps.map((task) => task.runId))).toEqual(new Set(runIds));
    });

    it("delivers an activation sent twice for one cause at least once (or a wake of its run)", async () => {
      // Prepare
      const task = { runId: newRunId(), cause: { kind: "outcome" as const, stepId: "s#0", attempt: 1 } };
      // Act
      await kit.queue.enqueueActivation(task);
      await kit.queue.enqueueActivation(task);
      // Assess
      const { activations } = await until(
        () => kit.delivered(),
        (delivered) => delivered.activations.length >= 1,
        "the activation",
      );
      expect(activations.some((delivered) => covers(delivered, task))).toBe(true);
    });
  });
}

const byRun = (a: { runId: string }, b: { runId: string }) => a.runId.localeCompare(b.runId);
