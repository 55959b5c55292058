/**
 * How a random program (programs.ts) ends when nothing disturbs it, and the comparisons of another run of
 * it with that reference: the property tests on the manual engine and the random programs on the AWS
 * emulators share them.
 */
import type { RunRecord, WorkflowEvent } from "tsworkflow";
import { expect } from "vitest";
import { manualEngine } from "../../core/support/manual-engine.ts";
import { answerWaits } from "./chaos.ts";
import { tuples } from "./crash-workflow.ts";
import { expectedOf, type Op, programWorkflow } from "./programs.ts";

export interface Outcome {
  run: RunRecord;
  events: WorkflowEvent[];
}

/**
 * The undisturbed run, on the manual engine harness: every task delivered once, in order; events sent to
 * a run once it waits for them; then the next timer fires, and so on.
 */
export async function undisturbed(program: Op[]): Promise<Outcome> {
  const m = manualEngine();
  const { runId } = await m.engine.start(programWorkflow, [program]);
  for (;;) {
    await m.runQueued();
    if ((await answerWaits(m.store, m.engine)) > 0) continue;
    const timer = m.timers.takeEarliest();
    if (!timer) break;
    m.clock.advanceTo(timer.fireAt);
    await m.engine.activate(timer.task);
  }
  return { run: await m.run(runId), events: await m.events(runId) };
}

export function expectSameEnd(program: Op[], reference: Outcome, disturbed: Outcome): void {
  const expected = expectedOf(program);
  expect(reference.run.status).toBe(expected.status);
  if (expected.status === "completed") expect(reference.run.result).toEqual(expected.result);
  else expect(reference.run.error).toMatchObject(expected.error);
  expect(disturbed.run.status).toBe(reference.run.status);
  expect(disturbed.run.result).toEqual(reference.run.result);
  expect(disturbed.run.error?.name).toBe(reference.run.error?.name);
  expect(disturbed.run.error?.message).toBe(reference.run.error?.message);
}

/**
 * The same steps, sleeps and logs with the same attempts, in an order that may differ where time ran on
 * while tasks were pending (a retry may start before a sibling's result arrives), and suspensions that
 * may differ accordingly.
 */
export function expectSameHistory(reference: Outcome, disturbed: Outcome): void {
  const moves = (events: WorkflowEvent[]) =>
    tuples(events)
      .filter(([type]) => type !== "workflow_suspended" && type !== "workflow_resumed")
      .map((tuple) => JSON.stringify(tuple));
  expect(moves(disturbed.events).sort()).toEqual(moves(reference.events).sort());
  const byId = (events: WorkflowEvent[]) => {
    const sequences: Record<string, string[]> = {};
    for (const [type, id, attempt] of tuples(events)) {
      if (id === undefined) continue;
      const sequence = sequences[String(id)] ?? [];
      sequence.push(`${type}#${attempt ?? ""}`);
      sequences[String(id)] = sequence;
    }
    return sequences;
  };
  expect(byId(disturbed.events)).toEqual(byId(reference.events));
}

/** The ids of the child runs a run's log started. */
export function childRunIdsOf(events: readonly WorkflowEvent[]): string[] {
  return events.flatMap((event) => (event.type === "child_started" ? [event.childRunId] : []));
}

/**
 * Checks that each run of `cases` (started as `runIds`, in order) ends as its program says, with the
 * history of its undisturbed run in `references`. Returns the ids of these runs and of their child runs.
 */
export async function expectEachAsUndisturbed(
  cases: Op[][],
  references: Outcome[],
  runIds: string[],
  read: (runId: string) => Promise<Outcome>,
): Promise<Set<string>> {
  const ran = new Set(runIds);
  for (const [index, runId] of runIds.entries()) {
    const outcome = await read(runId);
    const reference = references[index] as Outcome;
    expectSameEnd(cases[index] as Op[], reference, outcome);
    expectSameHistory(reference, outcome);
    for (const child of childRunIdsOf(outcome.events)) ran.add(child);
  }
  return ran;
}
