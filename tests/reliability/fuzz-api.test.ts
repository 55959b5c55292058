/**
 * Fuzzing the public API's inputs with fast-check: durations, names, run ids, idempotency keys, step
 * options and payloads, from plausible to hostile (huge numbers, NaN, BigInt, symbols, functions, deep and
 * cyclic objects, null prototypes, control characters). Every call either works or throws a
 * `TsWorkflowError` with a code (never a `TypeError` or `RangeError` from deep inside), and every run it
 * leaves is finished or waits for something that can come (an event it names): never a state it never
 * leaves. (Webhook requests are fuzzed with the webhook server.)
 *
 * TSW_PROPERTY_SEED=<seed> replays a failure; TSW_PROPERTY_RUNS=<n> runs more cases.
 */
import fc from "fast-check";
import {
  cancelRun,
  configure,
  configureLogging,
  getRun,
  type RunRecord,
  retryRun,
  sendEvent,
  sleep,
  start,
  step,
  TsWorkflowError,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { FINISHED_STATUSES, toMilliseconds, type WorkflowEvent } from "tsworkflow/engine";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const RUNS = Number(process.env.TSW_PROPERTY_RUNS ?? 150);
const SEED = process.env.TSW_PROPERTY_SEED === undefined ? undefined : Number(process.env.TSW_PROPERTY_SEED);
const settings = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

/** A value nested `levels` deep. */
const deep = (levels: number) => {
  let value: unknown = 1;
  for (let level = 0; level < levels; level += 1) value = { next: value };
  return value;
};
const cyclic = () => {
  const node: Record<string, unknown> = {};
  node.self = node;
  return node;
};

/** Values a careless or hostile caller might pass anywhere. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ withNullPrototype: true, withBigInt: true, withDate: true, withMap: true, withSet: true }),
  fc.constantFrom<unknown>(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    -1,
    1e300,
    2 ** 53,
    Number.MAX_VALUE,
    new Date(Number.NaN),
    new Date(8.64e15),
    10n,
    Symbol("s"),
    () => 1,
    "",
    " ",
    "\u0000",
    "../../etc/passwd",
    "a".repeat(10_000),
    "99999999999d",
    "1e400s",
    { weeks: 1e12 },
    { hours: -1 },
    { days: Number.NaN },
    { __proto__: null, seconds: 1 },
    [],
    [undefined],
    null,
    undefined,
  ),
  fc.integer({ min: 1, max: 3000 }).map(deep),
  fc.constant(null).map(cyclic),
);

const durations: fc.Arbitrary<unknown> = fc.oneof(
  hostile,
  fc.double(),
  fc.integer(),
  fc.string(),
  fc
    .tuple(fc.double({ min: 0, max: 1e20, noNaN: true }), fc.constantFrom("ms", "s", "m", "h", "d", "w"))
    .map(([n, unit]) => `${n}${unit}`),
  fc.dictionary(
    fc.constantFrom("weeks", "days", "hours", "minutes", "seconds", "milliseconds", "years"),
    hostile,
  ),
);

const names: fc.Arbitrary<unknown> = fc.oneof(
  hostile,
  fc.string({ maxLength: 120 }),
  fc.stringMatching(/^[A-Za-z0-9_.:-]{1,100}$/),
);

/** Calls `act`; a throw must be a TsWorkflowError with a code. */
async function expectCleanFailure(act: () => unknown): Promise<unknown> {
  try {
    return await act();
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(TsWorkflowError);
    expect(typeof (error as TsWorkflowError).code).toBe("string");
    return error;
  }
}

/** Finished, or suspended waiting for something the log names (an event). */
async function expectNotStuck(storage: MemoryStorage, runId: string): Promise<RunRecord> {
  const run = (await storage.getRun(runId)) as RunRecord;
  if (FINISHED_STATUSES.has(run.status)) {
    if (run.status === "failed") expect(typeof run.error?.code, JSON.stringify(run.error)).toBe("string");
    return run;
  }
  expect(run.status).toBe("suspended");
  const events = await storage.getEvents(runId);
  const suspended = events.findLast(
    (event): event is Extract<WorkflowEvent, { type: "workflow_suspended" }> =>
      event.type === "workflow_suspended",
  );
  expect(suspended?.waitingFor.length ?? 0).toBeGreaterThan(0);
  return run;
}

describe("fuzzed inputs to the public API", () => {
  it("durations: toMilliseconds gives a whole number of ms up to 1000 years, or InvalidDurationError", async () => {
    await fc.assert(
      fc.asyncProperty(durations, async (duration) => {
        const result = await expectCleanFailure(() => toMilliseconds(duration as never));
        if (result instanceof Error) expect((result as TsWorkflowError).code).toBe("INVALID_DURATION");
        else {
          expect(Number.isSafeInteger(result)).toBe(true);
          expect(result as number).toBeGreaterThanOrEqual(0);
        }
      }),
      settings,
    );
  });

  it("durations: a workflow that sleeps, waits or retries for any duration ends or waits for an event", async () => {
    let value: unknown;
    const napper = workflow("fuzz_napper", async (mode: string) => {
      if (mode === "sleep") await sleep(value as never);
      else await waitForEvent("fuzz_never", { timeout: value as never });
      return "done";
    });
    await fc.assert(
      fc.asyncProperty(durations, fc.constantFrom("sleep", "wait"), async (duration, mode) => {
        value = duration;
        const storage = new MemoryStorage();
        const runId = await startLocal(napper, [mode], { storage, timeSkipping: true });
        const run = await expectNotStuck(storage, runId);
        // A wait whose timeout passes before any event fails with TimeoutError (the workflow does not catch it).
        if (run.status === "failed")
          expect(run.error?.code).toBe(
            mode === "wait" && run.error?.code === "TIMEOUT" ? "TIMEOUT" : "INVALID_DURATION",
          );
      }),
      { ...settings, numRuns: Math.ceil(RUNS / 3) },
    );
  });

  it("names and step options: step() and workflow() define or throw a TsWorkflowError", async () => {
    await fc.assert(
      fc.asyncProperty(
        names,
        hostile,
        hostile,
        hostile,
        async (name, maxRetries, retryDelay, maxDuration) => {
          await expectCleanFailure(() =>
            step(name as string, async () => 1, {
              maxRetries: maxRetries as number,
              retryDelay: retryDelay as never,
              maxRetryDelay: maxDuration as never,
            }),
          );
          await expectCleanFailure(() =>
            workflow(name as string, async () => 1, { maxDuration: maxDuration as never }),
          );
          await expectCleanFailure(() => step(name as string, name as never));
        },
      ),
      settings,
    );
  });

  it("run ids, event names, idempotency keys and payloads: the top-level API works or throws a TsWorkflowError", async () => {
    const storage = new MemoryStorage();
    const runtime = new LocalRuntime({ storage, recover: false });
    configure({ runtime });
    const echo = step("fuzz_echo", async (value: unknown) => value);
    const echoing = workflow("fuzz_echoing", async (value: unknown) => {
      const got = await echo(value);
      const event = await waitForEvent("fuzz_event", { timeout: "1h" }).catch(() => null);
      return { got, event };
    });
    const runIds: string[] = [];
    try {
      await fc.assert(
        fc.asyncProperty(
          hostile,
          hostile,
          names,
          hostile,
          fc.boolean(),
          async (payload, key, eventName, runIdGuess, useRealRun) => {
            const started = await expectCleanFailure(() =>
              start(echoing, [payload], { idempotencyKey: key as string }),
            );
            if (typeof started === "string") runIds.push(started);
            const target = useRealRun && runIds.length > 0 ? runIds[runIds.length - 1] : runIdGuess;
            await expectCleanFailure(() => getRun(target as string));
            await expectCleanFailure(() => sendEvent(target as string, eventName as string, payload));
            await expectCleanFailure(() =>
              sendEvent(target as string, "fuzz_event", payload, { signalId: key as string }),
            );
            await expectCleanFailure(() => retryRun(target as string));
            // Cancelling a real run with a hostile reason is refused, or cancels it for good.
            await expectCleanFailure(() => cancelRun(target as string, eventName as string));
          },
        ),
        settings,
      );
      await runtime.idle();
      for (const runId of runIds) {
        const run = await expectNotStuck(storage, runId);
        expect(run.status).not.toBe("pending");
      }
    } finally {
      await runtime.close();
    }
  });

  it("payloads: whatever a step returns, the run ends", async () => {
    let produce: () => unknown = () => null;
    const producer = step("fuzz_producer", async () => produce(), { maxRetries: 1, retryDelay: "1s" });
    const producing = workflow("fuzz_producing", async () => producer());
    await fc.assert(
      fc.asyncProperty(hostile, async (value) => {
        produce = () => value;
        const storage = new MemoryStorage();
        const runId = await startLocal(producing, [], { storage, timeSkipping: true });
        const run = await expectNotStuck(storage, runId);
        expect(FINISHED_STATUSES.has(run.status)).toBe(true);
      }),
      { ...settings, numRuns: Math.ceil(RUNS / 3) },
    );
  });
});
