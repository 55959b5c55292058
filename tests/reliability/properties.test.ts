/**
 * Property tests: random workflows (sequential steps, Promise.all groups, sleeps, steps that fail some
 * attempts or fatally, caught or not, waits for events, child runs) run once undisturbed on the manual engine, then again under lost,
 * duplicated and reordered deliveries, process restarts and stale workers. Each disturbed run must end
 * with the same status and result, and the same events as [type, stepId | sleepId, attempt] (concurrent
 * steps of a Promise.all may finish in either order; the log keeps the order in which they finished).
 *
 * A failure prints fast-check's seed; rerun it with TSW_PROPERTY_SEED=<seed>. TSW_PROPERTY_RUNS=<n>
 * runs more cases per property (the default keeps the file under a minute on a busy two-core machine).
 */
import fc from "fast-check";
import { configureLogging } from "tsworkflow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChaosReport, type Faults, NO_FAULTS, runWithFaults } from "./support/chaos.ts";
import { canonicalTuples, tuples } from "./support/crash-workflow.ts";
import { expectSameEnd, expectSameHistory, type Outcome, undisturbed } from "./support/program-outcomes.ts";
import { hasGroups, type Op, programs, programWorkflow } from "./support/programs.ts";

const RUNS = Number(process.env.TSW_PROPERTY_RUNS ?? 100);
const SEED = process.env.TSW_PROPERTY_SEED === undefined ? undefined : Number(process.env.TSW_PROPERTY_SEED);
const settings = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

beforeAll(() => {
  configureLogging({ level: "silent" });
});

afterAll(() => {
  configureLogging();
});

function expectSameLog(program: Op[], reference: Outcome, disturbed: Outcome): void {
  if (hasGroups(program))
    expect(canonicalTuples(disturbed.events)).toEqual(canonicalTuples(reference.events));
  else expect(tuples(disturbed.events)).toEqual(tuples(reference.events));
}

type Injected = Pick<
  ChaosReport,
  "dropped" | "duplicated" | "restarts" | "conflicts" | "storeFailures" | "earlyTimers"
>;

/** Checks the property for `faults` and returns how many faults were injected over all cases. */
async function holdsUnder(faults: Faults, compare: "log" | "history" = "log"): Promise<Injected> {
  const injected: Injected = {
    dropped: 0,
    duplicated: 0,
    restarts: 0,
    conflicts: 0,
    storeFailures: 0,
    earlyTimers: 0,
  };
  await fc.assert(
    fc.asyncProperty(programs, fc.integer(), async (program, seed) => {
      const reference = await undisturbed(program);
      const disturbed = await runWithFaults(programWorkflow, [program], faults, seed);
      for (const key of Object.keys(injected) as (keyof Injected)[]) injected[key] += disturbed[key];
      expectSameEnd(program, reference, disturbed);
      if (compare === "log") expectSameLog(program, reference, disturbed);
      else expectSameHistory(reference, disturbed);
    }),
    settings,
  );
  return injected;
}

const NONE: Injected = {
  dropped: 0,
  duplicated: 0,
  restarts: 0,
  conflicts: 0,
  storeFailures: 0,
  earlyTimers: 0,
};

describe("random workflows under faults", () => {
  it("end as the program says, with the same log when every activation replays from the log", async () => {
    // Prepare
    const faults = { ...NO_FAULTS, cacheSize: 0 };
    // Act
    const injected = await holdsUnder(faults);
    // Assess
    expect(injected).toEqual(NONE);
  });

  it("end the same when deliveries are lost and the process restarts and recovers", async () => {
    // Prepare
    const faults = { ...NO_FAULTS, drop: 0.08, restart: 0.04 };
    // Act
    const injected = await holdsUnder(faults);
    // Assess
    expect(injected.dropped).toBeGreaterThan(0);
    expect(injected.restarts).toBeGreaterThan(0);
  });

  it("end the same when tasks and timers are delivered twice", async () => {
    // Prepare
    const faults = { ...NO_FAULTS, duplicate: 0.3 };
    // Act
    const injected = await holdsUnder(faults);
    // Assess
    expect(injected.duplicated).toBeGreaterThan(0);
  });

  it("end the same when pending activations, steps and timers are delivered in random order", async () => {
    // Prepare
    const faults = { ...NO_FAULTS, reorder: true };
    // Act
    const injected = await holdsUnder(faults);
    // Assess
    expect(injected).toEqual(NONE);
  });

  it("end the same when two workers take deliveries at once and their live copies go stale", async () => {
    // Prepare
    const faults = { ...NO_FAULTS, workers: 2, parallel: 3, forget: 0.1 };
    // Act
    const injected = await holdsUnder(faults);
    // Assess
    expect(injected.conflicts).toBeGreaterThan(0);
  });

  it("end the same when commits and outcomes fail before or after they are written", async () => {
    // Prepare
    const faults = { ...NO_FAULTS, storeFaults: 0.1 };
    // Act
    const injected = await holdsUnder(faults);
    // Assess
    expect(injected.storeFailures).toBeGreaterThan(0);
  });

  it("end the same when timers fire before their time", async () => {
    // Prepare
    const faults = { ...NO_FAULTS, earlyTimers: 0.15 };
    // Act
    const injected = await holdsUnder(faults);
    // Assess
    expect(injected.earlyTimers).toBeGreaterThan(0);
  });

  it("end with the same steps and attempts when time runs on while tasks are pending", async () => {
    // Prepare
    const faults = { ...NO_FAULTS, clockJumps: 0.2, reorder: true };
    // Act
    const injected = await holdsUnder(faults, "history");
    // Assess
    expect(injected.dropped).toBe(0);
  });

  it("end the same under all of these faults at once", async () => {
    // Prepare
    const faults: Faults = {
      drop: 0.05,
      duplicate: 0.2,
      reorder: true,
      restart: 0.03,
      forget: 0.05,
      workers: 2,
      parallel: 3,
      storeFaults: 0.05,
      earlyTimers: 0.05,
    };
    // Act
    const injected = await holdsUnder(faults);
    // Assess
    expect(injected.dropped).toBeGreaterThan(0);
    expect(injected.duplicated).toBeGreaterThan(0);
    expect(injected.restarts).toBeGreaterThan(0);
    expect(injected.conflicts).toBeGreaterThan(0);
    expect(injected.storeFailures).toBeGreaterThan(0);
    expect(injected.earlyTimers).toBeGreaterThan(0);
  });
});
