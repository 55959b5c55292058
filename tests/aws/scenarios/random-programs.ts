import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../../lib/aws/client.ts";
import { FINISHED_STATUSES } from "../../../lib/ports/event-store.ts";
import { openWaits } from "../../reliability/support/chaos.ts";
import {
  childRunIdsOf,
  expectEachAsUndisturbed,
  type Outcome,
  undisturbed,
} from "../../reliability/support/program-outcomes.ts";
import {
  attemptsRunTwice,
  programs,
  programWorkflow,
  withSleeps,
} from "../../reliability/support/programs.ts";
import { deployStack, type Emulators, type Stack, type StackOptions } from "../harness/aws-stack.ts";
import { duplicateEverySend } from "../harness/duplicate-sends.ts";
import { waitFor } from "../harness/wait.ts";

/**
 * Random programs (tests/reliability/support/programs.ts: steps that fail some attempts or for good,
 * Promise.all groups, sleeps, waits for events, child runs) through the real handlers on the emulators,
 * with Lambda's instance churn at one invocation in two: each run must end as the program says, with the
 * steps, sleeps and attempts of the same program run undisturbed on the manual engine. With no fault (no
 * crash, no lost or duplicated message) no attempt of a step may run twice; then the same again with every
 * message sent twice.
 *
 * (Lost replies are left to the crash matrix, which sends a few runs one after the other: with dozens of
 * runs at once, the lost-reply middleware of the harness stalls the SDK client for tens of seconds, and some
 * of its ECONNRESETs are not retried by the SDK, with or without tsworkflow's code.)
 *
 * A failure names fast-check's seed; rerun it with TSW_PROPERTY_SEED=<seed>. TSW_PROPERTY_RUNS=<n> runs n
 * programs at once (default 10), TSW_CHURN=<0 to 1> sets the churn.
 */

const PROGRAMS = Number(process.env.TSW_PROPERTY_RUNS ?? 10);
const SEED = process.env.TSW_PROPERTY_SEED === undefined ? Date.now() : Number(process.env.TSW_PROPERTY_SEED);
const CHURN = Number(process.env.TSW_CHURN ?? 0.5);

/** Sleeps of 1-2 s: they are real time on the emulators (a delayed SQS message). */
const nap = (ms: number) => 1_000 + ((ms / 1_000) % 3) * 500;

/**
 * Sends every open `waitForEvent` of the runs and of their child runs its event, as answerWaits does (only
 * these runs: other deployments share the table).
 */
async function answerWaits(
  stack: Stack,
  client: ReturnType<typeof createClient>,
  runIds: string[],
): Promise<void> {
  const pending = [...runIds];
  for (let runId = pending.pop(); runId !== undefined; runId = pending.pop()) {
    const events = await stack.store.getEvents(runId);
    pending.push(...childRunIdsOf(events));
    for (const [hookId, name] of openWaits(events))
      await client
        .sendEvent(runId, name, { name }, { signalId: `${runId}.${hookId}` })
        .catch((error: unknown) => {
          // A run that finished meanwhile takes no event.
          if ((error as Error).name !== "InvalidRunStateError") throw error;
        });
  }
}

export function describeRandomPrograms(emulatorsOf: () => Emulators): void {
  // The cases run side by side, each on its own deployment: their runs spend most of their time waiting.
  describe.concurrent(`AWS random programs with instance churn (seed ${SEED})`, () => {
    let emulators: Emulators;

    beforeAll(() => {
      emulators = emulatorsOf();
    });

    /**
     * Runs a sample of programs at once on a new deployment, answering their waits for events, and checks that
     * each ends as the program says with the steps, sleeps and attempts of its undisturbed run. Returns the
     * ids of the runs and of their child runs, and how many messages the workflow function received.
     */
    async function runPrograms(
      seed: number,
      options: StackOptions,
    ): Promise<{ runIds: Set<string>; workflowRecords: number }> {
      const cases = fc
        .sample(programs, { numRuns: PROGRAMS, seed })
        .map((program) => withSleeps(program, nap));
      const references = await Promise.all(cases.map((program) => undisturbed(program)));
      const deployed = deployStack(emulators, { workflows: [programWorkflow] }, { churn: CHURN, ...options });
      const client = createClient(deployed.config, {
        clients: { dynamodb: deployed.clients.dynamodb, sqs: deployed.clients.sqs },
      });
      try {
        const runIds = await Promise.all(
          cases.map(
            async (program) =>
              (await deployed.invokeStart({ workflow: programWorkflow.name, args: [program] })).runId,
          ),
        );
        await waitFor(
          "every run to finish",
          async () => {
            await answerWaits(deployed, client, runIds);
            const runs = await Promise.all(runIds.map((runId) => deployed.store.getRun(runId)));
            return runs.every((run) => run && FINISHED_STATUSES.has(run.status)) ? true : undefined;
          },
          100_000,
        );
        const all = await expectEachAsUndisturbed(cases, references, runIds, async (runId) => ({
          run: (await deployed.store.getRun(runId)) as Outcome["run"],
          events: await deployed.events(runId),
        }));
        return { runIds: all, workflowRecords: deployed.workflowMapping.stats.records };
      } finally {
        await client.close();
        await deployed.stop();
      }
    }

    it.each([
      ["inline", true],
      ["queued", false],
    ] as const)(
      "end as the program says, with its steps, sleeps and attempts, each attempt run once (steps %s)",
      async (_, inlineSteps) => {
        // Act, and assess the ends and histories
        const { runIds } = await runPrograms(SEED + (inlineSteps ? 0 : 1), { inlineSteps });
        // Assess
        expect(attemptsRunTwice(runIds)).toEqual([]);
      },
    );

    it("end the same when every message is sent twice (steps queued)", async () => {
      // Act, and assess the ends and histories
      const { workflowRecords } = await runPrograms(SEED + 2, {
        inlineSteps: false,
        decorateSqs: duplicateEverySend,
      });
      // Assess: the copies were delivered (two records at least for each message the runs needed).
      expect(workflowRecords).toBeGreaterThanOrEqual(2 * PROGRAMS);
    });
  });
}
