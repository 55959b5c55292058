import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../../lib/aws/client.ts";
import { FINISHED_STATUSES } from "../../../lib/ports/event-store.ts";
import {
  expectSameEnd,
  expectSameHistory,
  type Outcome,
  undisturbed,
} from "../../reliability/support/program-outcomes.ts";
import {
  attemptExecutions,
  type Op,
  programs,
  programWorkflow,
  withSleeps,
} from "../../reliability/support/programs.ts";
import { deployStack, type Emulators, type Stack } from "../harness/aws-stack.ts";
import { waitFor } from "../harness/wait.ts";

/**
 * Random programs (tests/reliability/support/programs.ts: steps that fail some attempts or for good,
 * Promise.all groups, sleeps, waits for events, child runs) through the real handlers on the emulators,
 * with Lambda's instance churn at one invocation in two: each run must end as the program says, with the
 * steps, sleeps and attempts of the same program run undisturbed on the manual engine, and no attempt of
 * a step may run twice (nothing here is a fault: no crash, no lost or duplicated message).
 *
 * A failure names fast-check's seed; rerun it with TSW_PROPERTY_SEED=<seed>. TSW_PROPERTY_RUNS=<n> runs n
 * programs at once (default 10), TSW_CHURN=<0 to 1> sets the churn.
 */

const PROGRAMS = Number(process.env.TSW_PROPERTY_RUNS ?? 10);
const SEED = process.env.TSW_PROPERTY_SEED === undefined ? Date.now() : Number(process.env.TSW_PROPERTY_SEED);

/** Sleeps of 1-2 s: they are real time on the emulators (a delayed SQS message). */
const nap = (ms: number) => 1_000 + ((ms / 1_000) % 3) * 500;

/** Sends every open `waitForEvent` of the deployment's unfinished runs its event, as answerWaits does. */
async function answerWaits(stack: Stack, client: ReturnType<typeof createClient>): Promise<void> {
  for (const status of ["running", "suspended"] as const) {
    for (const run of (await stack.store.listRuns({ status, limit: 1_000 })).runs) {
      const open = new Map<string, string>();
      for (const event of await stack.store.getEvents(run.runId)) {
        if (event.type === "hook_created") open.set(event.hookId, event.eventName);
        if (event.type === "hook_received" || event.type === "hook_timed_out") open.delete(event.hookId);
      }
      for (const [hookId, name] of open)
        await client.sendEvent(run.runId, name, { name }, { signalId: `${run.runId}.${hookId}` });
    }
  }
}

export function describeRandomPrograms(emulatorsOf: () => Emulators): void {
  describe(`AWS random programs with instance churn (seed ${SEED})`, () => {
    let emulators: Emulators;
    let stack: Stack | undefined;

    beforeAll(() => {
      emulators = emulatorsOf();
    });

    afterAll(async () => {
      await stack?.stop();
    });

    it.each([
      ["inline", true],
      ["queued", false],
    ] as const)(
      "end as the program says, with its steps, sleeps and attempts, each attempt run once (steps %s)",
      async (_, inlineSteps) => {
        // Prepare
        const sample = fc.sample(programs, { numRuns: PROGRAMS, seed: SEED + (inlineSteps ? 0 : 1) });
        const cases = sample.map((program) => withSleeps(program, nap));
        const references = await Promise.all(cases.map((program) => undisturbed(program)));
        stack = deployStack(
          emulators,
          { workflows: [programWorkflow] },
          { churn: Number(process.env.TSW_CHURN ?? 0.5), inlineSteps },
        );
        const client = createClient(stack.config, {
          clients: { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs },
        });
        const started = stack;
        attemptExecutions.clear();
        try {
          // Act
          const runIds = await Promise.all(
            cases.map(
              async (program) =>
                (await started.invokeStart({ workflow: programWorkflow.name, args: [program] })).runId,
            ),
          );
          await waitFor(
            "every run to finish",
            async () => {
              await answerWaits(started, client);
              const runs = await Promise.all(runIds.map((runId) => started.store.getRun(runId)));
              return runs.every((run) => run && FINISHED_STATUSES.has(run.status)) ? true : undefined;
            },
            120_000,
          );
          // Assess
          for (const [index, runId] of runIds.entries()) {
            const program = cases[index] as Op[];
            const outcome: Outcome = {
              run: (await started.store.getRun(runId)) as Outcome["run"],
              events: await started.events(runId),
            };
            const reference = references[index] as Outcome;
            expectSameEnd(program, reference, outcome);
            expectSameHistory(reference, outcome);
          }
          expect([...attemptExecutions].filter(([, count]) => count > 1)).toEqual([]);
        } finally {
          await client.close();
        }
      },
    );
  });
}
