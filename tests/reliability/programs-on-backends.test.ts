/**
 * The random programs of the property tests (steps that fail some attempts or for good, Promise.all groups,
 * sleeps, waits for events, child runs) on the real backends in real time: the file backend's embedded
 * worker, and two BullMQ workers sharing a real redis-server, with inline steps on and off. Each run must end
 * as the program says, with the steps, sleeps and attempts of the same program run undisturbed on the manual
 * engine, and no attempt may run twice (nothing here is a fault).
 *
 * A failure names fast-check's seed; rerun it with TSW_PROPERTY_SEED=<seed>. TSW_PROPERTY_RUNS=<n> runs n
 * programs at once (default 8).
 */
import fc from "fast-check";
import { configureLogging } from "tsworkflow";
import { type RedisServer, startRedisServer } from "tsworkflow/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, fileBackend, redisBackend, type Worker, waitForFinished } from "./support/backends.ts";
import { answerWaits } from "./support/chaos.ts";
import { CrashSwitch } from "./support/faults.ts";
import { expectEachAsUndisturbed, type Outcome, undisturbed } from "./support/program-outcomes.ts";
import { attemptsRunTwice, programs, programWorkflow, withSleeps } from "./support/programs.ts";

const PROGRAMS = Number(process.env.TSW_PROPERTY_RUNS ?? 8);
const SEED = process.env.TSW_PROPERTY_SEED === undefined ? Date.now() : Number(process.env.TSW_PROPERTY_SEED);

/** Sleeps of 100-300 ms: they are real time here. */
const nap = (ms: number) => 100 + ((ms / 1_000) % 3) * 100;

let server: RedisServer;

beforeAll(async () => {
  configureLogging({ level: "silent" });
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
  configureLogging();
});

// The cases run side by side, each on its own backend (a directory, a key prefix): their runs mostly wait.
describe.concurrent(`random programs on the real backends (seed ${SEED})`, () => {
  it.each([
    ["the file backend", 1, true],
    ["the file backend", 1, false],
    ["two BullMQ workers", 2, true],
    ["two BullMQ workers", 2, false],
  ] as const)(
    "end as the program says on %s, each attempt run once (%i worker(s), inline steps: %s)",
    async (_, count, inlineSteps) => {
      // Prepare
      const cases = fc
        .sample(programs, { numRuns: PROGRAMS, seed: SEED + count + (inlineSteps ? 0 : 10) })
        .map((program) => withSleeps(program, nap));
      const references = await Promise.all(cases.map((program) => undisturbed(program)));
      const backend: Backend =
        count === 1 ? fileBackend(undefined, { inlineSteps }) : redisBackend(server.url, { inlineSteps });
      const workers: Worker[] = [];
      try {
        for (let i = 0; i < count; i += 1)
          workers.push(await backend.startWorker(new CrashSwitch(undefined)));
        const engine = (workers[0] as Worker).engine;
        // Act
        const runIds = await Promise.all(
          cases.map(
            async (program, index) =>
              (await (workers[index % count] as Worker).engine.start(programWorkflow, [program])).runId,
          ),
        );
        const store = backend.reader();
        const answering = setInterval(() => void answerWaits(store, engine).catch(() => {}), 50);
        try {
          for (const runId of runIds) await waitForFinished(store, runId, 60_000);
        } finally {
          clearInterval(answering);
        }
        // Assess
        const ran = await expectEachAsUndisturbed(cases, references, runIds, async (runId) => ({
          run: (await store.getRun(runId)) as Outcome["run"],
          events: await store.getEvents(runId),
        }));
        expect(attemptsRunTwice(ran)).toEqual([]);
      } finally {
        await Promise.all(workers.map((worker) => worker.stop()));
        await backend.close();
      }
    },
  );
});
