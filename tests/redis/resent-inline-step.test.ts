import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stepJobId } from "../../lib/adapters/redis/bullmq-queue.ts";
import type { StepAttempt } from "../../lib/adapters/redis/run-lock.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { waitForEvent } from "../../lib/core/primitives.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { inboxIds } from "../../lib/ports/inbox.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

/**
 * QA round 4, finding 2: an activation that re-sends everything its run waits for (a dead worker's stalled
 * activation job delivered again, a sweep) while another worker runs the run's step inline, with the run's
 * lock let go, sent that step's task; a worker ran the copy beside the inline attempt and stored its outcome
 * after the run had completed. Executions are counted in the step itself.
 */

let redis: RedisServer;
const runtimes: RedisRuntime[] = [];
beforeAll(async () => {
  configureLogging({ level: "silent" });
  redis = await startRedisServer();
});
afterAll(async () => {
  open();
  for (const runtime of runtimes) await runtime.close();
  await redis?.stop();
  configureLogging();
});

let executions = 0;
let entered: () => void = () => {};
let gate: Promise<void> = Promise.resolve();
let open: () => void = () => {};
const held = step("resent_inline_held", async () => {
  executions += 1;
  entered();
  await gate;
  return "held done";
});
const flow = workflow("resent_inline_flow", async () => {
  await waitForEvent("go");
  await held();
  return "finished";
});

/** A worker whose run locks (and inline claims) live 1 s, so that a copy waiting on a claim comes back soon. */
async function startedRuntime(name: string): Promise<RedisRuntime> {
  const runtime = createRedisRuntime({
    url: redis.url,
    prefix: `rsi-${name}-${Date.now()}:`,
    stalledAfterMs: 1_000,
    sweep: false,
  });
  runtimes.push(runtime);
  await runtime.startWorker();
  return runtime;
}

const until = async (condition: () => Promise<boolean>) => {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

const client = (runtime: RedisRuntime) => runtime.storage.client as Redis;

/** The run's first attempt of `held`. */
const heldTask = (runId: string): StepAttempt => ({ runId, stepId: "resent_inline_held#0", attempt: 1 });
/** Its step job, while BullMQ keeps it (a done job is removed). */
const stepJob = (runtime: RedisRuntime, runId: string) =>
  runtime.queue.steps.getJob(stepJobId(heldTask(runId)));

/** What the run keeps of its step outcomes (its event is one of them): none but the event, since its step ran inline. */
async function storedOutcomes(runtime: RedisRuntime, runId: string) {
  const prefix = runtime.queue.prefix;
  return {
    outcomes: (await client(runtime).hkeys(`${prefix}outcomes:${runId}`)).filter(
      (field) => !field.includes("$signal:"),
    ).length,
    pending: await client(runtime).llen(`${prefix}pending-outcomes:${runId}`),
  };
}

describe("a step task sent again while its attempt runs inline on Redis", () => {
  it.each([
    ["a sweep", "sweep", (runtime: RedisRuntime) => runtime.sweep({ staleAfterMs: 0 }).then(() => {})],
    [
      "the event's activation job, stalled on a worker that died, delivered again",
      "stalled",
      (runtime: RedisRuntime, runId: string) =>
        runtime.queue.enqueueActivation({
          runId,
          cause: { kind: "outcome", stepId: inboxIds.signal("go", "go-1"), attempt: 1 },
          redelivered: true,
        }),
    ],
  ])(
    "runs the attempt once when %s re-sends it, and stores no outcome for it",
    async (_name, prefix, resend) => {
      // Prepare: an event starts the step, which runs inline in the event's activation and holds, long enough
      // for its worker to let go of the run's lock.
      const runtime = await startedRuntime(prefix);
      executions = 0;
      gate = new Promise((resolve) => {
        open = resolve;
      });
      const inside = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const { runId } = await runtime.start(flow, []);
      await until(async () => (await runtime.getRun(runId))?.status === "suspended");
      await runtime.sendEvent(runId, "go", 1, { signalId: "go-1" });
      await inside;
      await until(async () => (await client(runtime).exists(`${runtime.queue.prefix}lock:${runId}`)) === 0);
      // Act: an activation re-sends everything the run waits for; once the copy of the step's task is queued (or
      // running), the inline attempt ends and the run completes; then the copy is done with.
      await resend(runtime, runId);
      await until(async () => (await stepJob(runtime, runId)) !== undefined);
      await new Promise((resolve) => setTimeout(resolve, 200)); // time for a worker to take the copy's job
      open();
      const run = await runtime.waitForRun(runId, { timeoutMs: 15_000 });
      await until(async () => (await stepJob(runtime, runId)) === undefined);
      // Assess
      expect(run).toMatchObject({ status: "completed", result: "finished" });
      expect(executions).toBe(1);
      expect(await storedOutcomes(runtime, runId)).toEqual({ outcomes: 0, pending: 0 });
    },
  );

  it("runs nothing for a task sent again of an attempt that the run recorded inline and completed", async () => {
    // Prepare: a run whose step ran inline, and completed.
    const runtime = await startedRuntime("late");
    executions = 0;
    gate = Promise.resolve();
    const { runId } = await runtime.start(flow, []);
    await runtime.sendEvent(runId, "go", 1);
    await runtime.waitForRun(runId, { timeoutMs: 15_000 });
    const [started] = (await runtime.getEvents(runId)).filter((event) => event.type === "step_started");
    // Act: the copy of its task that a re-sending activation made arrives after all that.
    await runtime.queue.enqueueStep({
      ...heldTask(runId),
      workflowName: "resent_inline_flow",
      stepName: "resent_inline_held",
      input: [],
      issueSeq: started?.seq as number,
      resent: true,
    });
    await until(async () => (await stepJob(runtime, runId)) === undefined);
    // Assess
    expect(executions).toBe(1);
    expect(await storedOutcomes(runtime, runId)).toEqual({ outcomes: 0, pending: 0 });
  });
});
