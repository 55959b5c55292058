/**
 * Golden histories: event logs recorded from the random programs of the property tests and from hand-written
 * scenarios, kept in tests/fixtures/golden/ so that a change to the engine that changes any log is seen.
 * `record-golden.ts` writes them; `golden-histories.test.ts` runs each again and compares.
 *
 * Logs are compared after normalization: run ids (random) become `run-0`, `run-1`… in order of appearance.
 * Everything else (timestamps from the manual clock, ids, inputs, results, errors without stacks) is kept,
 * except the measured timing of step attempts (`startedAt`, `durationMs`), which is no decision of the engine.
 */
import fc from "fast-check";
import {
  type AnyWorkflow,
  CancelledError,
  configureLogging,
  FatalError,
  getStepInfo,
  log,
  now,
  runChild,
  sleep,
  step,
  TimeoutError,
  type WorkflowEvent,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { retryRun } from "../../../lib/engine/run-control.ts";
import { answerWaits } from "../../reliability/support/chaos.ts";
import { type Op, programs, programWorkflow } from "../../reliability/support/programs.ts";
import { type ManualEngine, manualEngine } from "./manual-engine.ts";

export const GOLDEN_DIR = new URL("../../fixtures/golden/", import.meta.url);
/** fast-check's seed and count for the recorded programs: changing them changes the golden set. */
export const PROGRAM_SEED = 20_260_101;
export const PROGRAM_COUNT = 150;

/** One recorded history: the run's log and those of its child runs, normalized. */
export interface GoldenHistory {
  name: string;
  /** For a program: the program, to run it again. */
  program?: Op[];
  logs: unknown[][];
}

/** How the engine is set up for a history: the manual harness, warm or replaying every activation. */
export interface Harness {
  cacheSize?: number;
  inlineSteps?: boolean;
}

/**
 * Drives every run to its end the undisturbed way: queued tasks, then (with `answer`) events for the waits
 * that are open, then the earliest timer, and so on.
 */
export async function driveToEnd(m: ManualEngine, answer = false): Promise<void> {
  for (;;) {
    await m.runQueued();
    if (answer && (await answerWaits(m.store, m.engine)) > 0) continue;
    const timer = m.timers.takeEarliest();
    if (!timer) return;
    m.clock.advanceTo(timer.fireAt);
    await m.engine.activate(timer.task);
  }
}

/** The run's log followed by its children's (depth first, in the order they were started), normalized. */
export async function historyOf(m: ManualEngine, runId: string): Promise<unknown[][]> {
  const logs: WorkflowEvent[][] = [];
  const visit = async (id: string) => {
    const events = await m.store.getEvents(id);
    logs.push(events);
    for (const event of events) if (event.type === "child_started") await visit(event.childRunId);
  };
  await visit(runId);
  return normalize(logs);
}

function normalize(logs: WorkflowEvent[][]): unknown[][] {
  const ids = new Map<string, string>();
  for (const events of logs) {
    for (const event of events) {
      if (!ids.has(event.runId)) ids.set(event.runId, `run-${ids.size}`);
      if (event.type === "child_started" && !ids.has(event.childRunId))
        ids.set(event.childRunId, `run-${ids.size}`);
    }
  }
  // Stacks, and the measured timing of step attempts (added to the log after these histories were recorded).
  const timing = new Set(["startedAt", "durationMs"]);
  let text = JSON.stringify(logs, function (this: { type?: unknown }, key: string, value: unknown) {
    const attemptTiming = timing.has(key) && String(this.type).startsWith("step_");
    return key === "stack" || attemptTiming ? undefined : value;
  });
  for (const [id, placeholder] of ids) text = text.split(id).join(placeholder);
  return JSON.parse(text) as unknown[][];
}

/** The programs of the golden set: the property tests' generator with a fixed seed. */
export function goldenPrograms(): Op[][] {
  return fc.sample(programs, { seed: PROGRAM_SEED, numRuns: PROGRAM_COUNT });
}

export async function runProgram(program: Op[], harness: Harness = {}): Promise<unknown[][]> {
  const m = manualEngine(harness);
  const { runId } = await m.engine.start(programWorkflow, [program]);
  await driveToEnd(m, true);
  return historyOf(m, runId);
}

// Hand-written scenarios: the features the random programs do not cover.

const greet = step("golden_greet", async (name: string) => `hello ${name}`);
const flakyOnce = step(
  "golden_flaky_once",
  async (label: string) => {
    if ((getStepInfo()?.attempt ?? 1) === 1) throw new Error(`${label} fails its first attempt`);
    return `${label} ok`;
  },
  { maxRetries: 3, retryDelay: "exponential" },
);
const fatalFirst = step("golden_fatal_first", async () => {
  if ((getStepInfo()?.attempt ?? 1) === 1) throw new FatalError("declined");
  return "accepted";
});
const cleanUp = step("golden_clean_up", async (why: string) => `cleaned after ${why}`);
const slowStep = step("golden_slow", async (n: number) => n * 2);

const raceWorkflow = workflow("golden_race", async () => {
  const winner = await Promise.race([greet("fast"), sleep("1h").then(() => "timer")]);
  return { winner, at: now().toISOString() };
});

const timeoutWorkflow = workflow("golden_timeout", async () => {
  try {
    return await waitForEvent("golden_never", { timeout: "2h" });
  } catch (error) {
    if (error instanceof TimeoutError) {
      log.warning("no event came", { at: now().toISOString() });
      return "timed out";
    }
    throw error;
  }
});

const cancellable = workflow("golden_cancellable", async () => {
  try {
    await greet("before");
    await sleep("1d");
    return "never";
  } catch (error) {
    if (error instanceof CancelledError) await cleanUp("cancel");
    throw error;
  }
});

const retriedWorkflow = workflow("golden_retried", async () => {
  const a = await flakyOnce("a");
  return { a, b: await fatalFirst() };
});

/** Its history recorded before `maxDurationMs` is kept in tests/fixtures/golden/recorded-deadline.json. */
export const deadlineWorkflow = workflow(
  "golden_deadline",
  async () => {
    await greet("early");
    await sleep("2d");
    return "too late";
  },
  { maxDuration: "1d" },
);

const childWorkflow = workflow("golden_child", async (n: number) => {
  if (n < 0) throw new FatalError(`negative ${n}`);
  return slowStep(n);
});
const parentWorkflow = workflow("golden_parent", async () => {
  const ok = await runChild(childWorkflow, [21]);
  const failed = await runChild(childWorkflow, [-1]).catch((error: Error) => error.message);
  return [ok, failed];
});

const chain = workflow("golden_chain", async (n: number) => {
  let value = n;
  for (let index = 0; index < 4; index += 1) value = await slowStep(value);
  await sleep("1m");
  return Promise.all([slowStep(value), greet(String(value))]);
});

const waiter = workflow("golden_waiter", async () => {
  const first = await waitForEvent<{ n: number }>("golden_ping");
  await sleep("5m");
  const second = await waitForEvent<{ n: number }>("golden_ping");
  return first.n + second.n;
});

/** A scenario: how to run it from a fresh manual engine; returns its run id. */
export interface Scenario {
  name: string;
  harness?: Harness;
  run(m: ManualEngine): Promise<string>;
}

const simply =
  (definition: AnyWorkflow, args: unknown[] = []) =>
  async (m: ManualEngine) => {
    const { runId } = await m.engine.start(definition, args);
    await driveToEnd(m);
    return runId;
  };

export const SCENARIOS: Scenario[] = [
  { name: "race of a step and a sleep, and now()", run: simply(raceWorkflow) },
  { name: "waitForEvent that times out, caught, with a log line", run: simply(timeoutWorkflow) },
  {
    name: "cancellation during a sleep, with a clean-up step in catch",
    async run(m) {
      const { runId } = await m.engine.start(cancellable, []);
      await m.runQueued();
      await m.engine.cancelRun(runId, "customer left");
      await driveToEnd(m);
      return runId;
    },
  },
  {
    name: "a retried step, then a fatal failure, then retryRun",
    async run(m) {
      const { runId } = await m.engine.start(retriedWorkflow, []);
      await driveToEnd(m);
      await retryRun(m.engine, runId);
      await driveToEnd(m);
      return runId;
    },
  },
  { name: "maxDuration passed during a sleep", run: simply(deadlineWorkflow) },
  { name: "child runs, one failing and caught", run: simply(parentWorkflow) },
  { name: "a sequential chain, a sleep and a Promise.all", run: simply(chain, [1]) },
  { name: "the same chain with inline steps", harness: { inlineSteps: true }, run: simply(chain, [1]) },
  {
    name: "events sent before the wait, with signal ids, one twice",
    async run(m) {
      const { runId } = await m.engine.start(waiter, []);
      await m.runQueued();
      await m.engine.sendEvent(runId, "golden_ping", { n: 1 }, { signalId: "one" });
      await m.engine.sendEvent(runId, "golden_ping", { n: 1 }, { signalId: "one" });
      await m.engine.sendEvent(runId, "golden_ping", { n: 2 }, { signalId: "two" });
      await driveToEnd(m);
      return runId;
    },
  },
];

export async function runScenario(scenario: Scenario, harness: Harness = {}): Promise<unknown[][]> {
  const m = manualEngine({ ...scenario.harness, ...harness });
  const runId = await scenario.run(m);
  return historyOf(m, runId);
}

export const quiet = () => configureLogging({ level: "silent" });
