/**
 * The crash matrix: on each backend, a worker dies at each boundary of a step's life (before the step
 * runs, after it ran but before its outcome is stored, after the outcome is stored but before the run
 * is woken, after a commit but before its tasks are sent), for a sequential step, a step of a
 * Promise.all and the step after a sleep. A new worker takes over (the local backends resume
 * unfinished runs when they start; on Redis, BullMQ hands the dead worker's jobs to it). The run must
 * complete with the result and the log of an undisturbed run, and one step_completed per step.
 */
import { configureLogging, type RunRecord } from "tsworkflow";
import { type RedisServer, startRedisServer } from "tsworkflow/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Backend,
  fileBackend,
  memoryBackend,
  redisBackend,
  type Worker,
  waitForFinished,
} from "./support/backends.ts";
import {
  CRASH_FLOW_STEPS,
  canonicalTuples,
  completionsPerStep,
  crashFlow,
  executions,
  retryFlow,
  tuples,
} from "./support/crash-workflow.ts";
import { BOUNDARIES, type Boundary, CrashSwitch } from "./support/faults.ts";

const TARGETS: [string, string][] = [
  ["the first step", "cm_first#0"],
  ["a step of a Promise.all", "cm_left#0"],
  ["the step after a sleep", "cm_last#0"],
];

const CASES = BOUNDARIES.flatMap((boundary) =>
  TARGETS.map(([where, stepId]) => [boundary, where, stepId] as [Boundary, string, string]),
);

/** How many times the step the worker died on ran in all: at least once, more only when its outcome was lost. */
function expectedExecutions(boundary: Boundary, backend: Backend): number {
  if (boundary === "before-outcome") return 2;
  if (boundary === "before-wake") return backend.durableOutcomes ? 1 : 2;
  return 1;
}

/**
 * With inline steps a sequential step runs inside its run's activation: no step task, stored outcome or
 * wake-up exists for it, so the worker can die only after the commit that starts it, or after it ran and
 * before the commit that records it. A step of a Promise.all still goes through the queue.
 */
const INLINE_CASES: [Boundary, string, string][] = [
  ...TARGETS.map(([where, stepId]) => ["after-commit", where, stepId] as [Boundary, string, string]),
  ...TARGETS.map(([where, stepId]) => ["before-outcome-commit", where, stepId] as [Boundary, string, string]),
  ["before-step", "a step of a Promise.all", "cm_left#0"],
  ["before-wake", "a step of a Promise.all", "cm_left#0"],
];

/**
 * An inline step's outcome lives in its worker's memory until the commit: it runs again if that commit is
 * lost. A queued step's stored outcome survives where outcomes are durable.
 */
function expectedInlineExecutions(boundary: Boundary, backend: Backend, stepId: string): number {
  const queued = stepId === "cm_left#0";
  if (boundary === "before-outcome-commit") return queued && backend.durableOutcomes ? 1 : 2;
  if (boundary === "before-wake") return backend.durableOutcomes ? 1 : 2;
  return 1;
}

const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    promise,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} did not happen in ${ms} ms`)), ms),
    ),
  ]);

let baseline: { run: RunRecord; canonical: string[] };

beforeAll(async () => {
  configureLogging({ level: "silent" });
  const backend = memoryBackend();
  const worker = await backend.startWorker(new CrashSwitch(undefined));
  const { runId } = await worker.engine.start(crashFlow, ["undisturbed"]);
  const run = await waitForFinished(backend.reader(), runId);
  baseline = { run, canonical: canonicalTuples(await backend.reader().getEvents(runId)) };
  await worker.stop();
  await backend.close();
});

afterAll(() => {
  configureLogging();
});

async function crashAndRecover(backend: Backend, boundary: Boundary, stepId: string) {
  const workers: Worker[] = [];
  try {
    const crash = new CrashSwitch({ boundary, stepId });
    const doomed = await backend.startWorker(crash);
    workers.push(doomed);
    const { runId } = await doomed.engine.start(crashFlow, ["undisturbed"]);
    await within(crash.tripped, 15_000, `the crash at ${boundary} of ${stepId}`);
    await doomed.stop();
    await backend.restart();
    const survivor = await backend.startWorker(new CrashSwitch(undefined));
    workers.push(survivor);
    const run = await waitForFinished(backend.reader(), runId);
    const events = await backend.reader().getEvents(runId);
    return { run, events };
  } finally {
    for (const worker of workers) await worker.stop();
  }
}

function describeMatrix(
  name: string,
  open: () => Backend,
  cases: [Boundary, string, string][] = CASES,
  expected: (boundary: Boundary, backend: Backend, stepId: string) => number = expectedExecutions,
) {
  describe(`a worker that dies on the ${name} backend`, () => {
    it("completes the run after dying right after committing a failed attempt's retry", async () => {
      // Prepare
      const backend = open();
      const workers: Worker[] = [];
      try {
        const crash = new CrashSwitch({ boundary: "after-retry-commit", stepId: "cm_flaky#0" });
        const doomed = await backend.startWorker(crash);
        workers.push(doomed);
        // Act
        const { runId } = await doomed.engine.start(retryFlow, ["retried", 1_000]);
        await within(crash.tripped, 15_000, "the crash after the retry commit");
        await doomed.stop();
        await backend.restart();
        workers.push(await backend.startWorker(new CrashSwitch(undefined)));
        const run = await waitForFinished(backend.reader(), runId);
        const events = await backend.reader().getEvents(runId);
        // Assess
        expect(run.status).toBe("completed");
        expect(run.result).toBe("last(first(retried), flaky(first(retried)))");
        expect(tuples(events).filter(([type]) => String(type).startsWith("step_"))).toEqual([
          ["step_started", "cm_first#0", 1],
          ["step_completed", "cm_first#0", 1],
          ["step_started", "cm_flaky#0", 1],
          ["step_retrying", "cm_flaky#0", 1],
          ["step_started", "cm_flaky#0", 2],
          ["step_completed", "cm_flaky#0", 2],
          ["step_started", "cm_last#0", 1],
          ["step_completed", "cm_last#0", 1],
        ]);
        expect(executions.get(`${runId}:cm_flaky#0`)).toBe(2);
      } finally {
        for (const worker of workers) await worker.stop();
        await backend.close();
      }
    });

    it.each(cases)("completes the run after dying at %s of %s", async (boundary, _where, stepId) => {
      // Prepare
      const backend = open();
      try {
        // Act
        const { run, events } = await crashAndRecover(backend, boundary, stepId);
        // Assess
        expect(run.status).toBe("completed");
        expect(run.result).toEqual(baseline.run.result);
        expect(completionsPerStep(events)).toEqual(Object.fromEntries(CRASH_FLOW_STEPS.map((id) => [id, 1])));
        expect(canonicalTuples(events)).toEqual(baseline.canonical);
        expect(executions.get(`${run.runId}:${stepId}`)).toBe(expected(boundary, backend, stepId));
      } finally {
        await backend.close();
      }
    });
  });
}

describeMatrix("memory", memoryBackend);
describeMatrix("file", fileBackend);
describeMatrix(
  "memory (inline steps)",
  () => memoryBackend({ inlineSteps: true }),
  INLINE_CASES,
  expectedInlineExecutions,
);
describeMatrix(
  "file (inline steps)",
  () => fileBackend(undefined, { inlineSteps: true }),
  INLINE_CASES,
  expectedInlineExecutions,
);

describe("on Redis", () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  describeMatrix("Redis", () => redisBackend(server.url));
  describeMatrix(
    "Redis (inline steps)",
    () => redisBackend(server.url, { inlineSteps: true }),
    INLINE_CASES,
    expectedInlineExecutions,
  );
});
