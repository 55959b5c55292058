/**
 * Random workflows for the property tests: a program is data (sequential steps, Promise.all groups,
 * sleeps, log lines, waits for an event, child runs of another program) run by one interpreter
 * workflow, so any program runs on any worker. Steps fail a given number of attempts (by attempt
 * number, so that a step run twice behaves the same) or fatally, and the workflow catches some failures.
 */
import fc from "fast-check";
import {
  FatalError,
  getStepInfo,
  log,
  runChild,
  sleep,
  step,
  type WorkflowDefinition,
  waitForEvent,
  workflow,
} from "tsworkflow";

export interface StepSpec {
  label: string;
  /** Attempts that fail before one succeeds; past MAX_RETRIES the step fails for good. */
  fails: number;
  /** Throws FatalError on the first attempt. */
  fatal: boolean;
  /** The workflow catches the step's failure and goes on with a description of it. */
  caught: boolean;
}

/** A member of a Promise.all group: a step or a sleep. */
export type Member = { kind: "step"; step: StepSpec } | { kind: "sleep"; ms: number };

export type Op =
  | { kind: "step"; step: StepSpec }
  | { kind: "all"; members: Member[] }
  | { kind: "sleep"; ms: number }
  | { kind: "log"; message: string }
  /** `waitForEvent(name)`: the test sends `{ name }` to the run once it waits (see `answerWaits`). */
  | { kind: "event"; name: string }
  /** `runChild` of another program; a failure of the child is caught or fails this run too. */
  | { kind: "child"; program: Op[]; caught: boolean };

export const MAX_RETRIES = 2;

/** How many times each attempt ran in this process: `<runId>:<stepId>:<attempt>` → executions. */
export const attemptExecutions = new Map<string, number>();

/** The attempts of the runs `runIds` that ran more than once, with their counts (other tests' runs left out). */
export function attemptsRunTwice(runIds: ReadonlySet<string>): [string, number][] {
  return [...attemptExecutions].filter(
    ([key, executions]) => executions > 1 && runIds.has(key.slice(0, key.indexOf(":"))),
  );
}

const programStep = step(
  "prop_step",
  async (spec: StepSpec) => {
    const info = getStepInfo();
    const attempt = info?.attempt ?? 1;
    const key = `${info?.runId}:${info?.stepId}:${attempt}`;
    attemptExecutions.set(key, (attemptExecutions.get(key) ?? 0) + 1);
    if (spec.fatal) throw new FatalError(`fatal ${spec.label}`);
    if (attempt <= spec.fails) throw new Error(`transient ${spec.label} attempt ${attempt}`);
    return `${spec.label}@${attempt}`;
  },
  { maxRetries: MAX_RETRIES, retryDelay: "1s" },
);

const describeFailure = (error: Error) => `caught ${error.name}: ${error.message}`;

const call = (spec: StepSpec): Promise<string> =>
  spec.caught ? programStep(spec).catch(describeFailure) : programStep(spec);

const napFor = async (ms: number): Promise<string> => {
  await sleep(ms);
  return `slept ${ms}`;
};

/** Runs a program: the results of its operations in order. */
export const programWorkflow: WorkflowDefinition<[Op[]], unknown[]> = workflow(
  "prop_program",
  async (program: Op[]) => {
    const results: unknown[] = [];
    for (const op of program) {
      if (op.kind === "step") results.push(await call(op.step));
      else if (op.kind === "all")
        results.push(
          await Promise.all(
            op.members.map((member) => (member.kind === "step" ? call(member.step) : napFor(member.ms))),
          ),
        );
      else if (op.kind === "sleep") results.push(await napFor(op.ms));
      else if (op.kind === "event") results.push(await waitForEvent<{ name: string }>(op.name));
      else if (op.kind === "child") {
        const child = runChild(programWorkflow, [op.program]);
        results.push(await (op.caught ? child.catch(describeFailure) : child));
      } else log.info(op.message, { op: results.length });
    }
    return results;
  },
);

/** What a program must end with, worked out without the engine. */
export type Expected =
  | { status: "completed"; result: unknown[] }
  | { status: "failed"; error: { name: string; message: string } };

function outcomeOf(
  spec: StepSpec,
): { ok: true; value: string } | { ok: false; name: string; message: string } {
  if (spec.fatal) return { ok: false, name: "FatalError", message: `fatal ${spec.label}` };
  if (spec.fails > MAX_RETRIES)
    return { ok: false, name: "Error", message: `transient ${spec.label} attempt ${MAX_RETRIES + 1}` };
  return { ok: true, value: `${spec.label}@${spec.fails + 1}` };
}

export function expectedOf(program: Op[]): Expected {
  const results: unknown[] = [];
  const value = (spec: StepSpec): string | Expected => {
    const outcome = outcomeOf(spec);
    if (outcome.ok) return outcome.value;
    if (spec.caught) return `caught ${outcome.name}: ${outcome.message}`;
    return { status: "failed", error: { name: outcome.name, message: outcome.message } };
  };
  for (const op of program) {
    if (op.kind === "step") {
      const result = value(op.step);
      if (typeof result !== "string") return result;
      results.push(result);
    } else if (op.kind === "all") {
      // Groups only hold caught failures (see programs), so every member has a value.
      results.push(
        op.members.map((member) =>
          member.kind === "step" ? (value(member.step) as string) : `slept ${member.ms}`,
        ),
      );
    } else if (op.kind === "sleep") results.push(`slept ${op.ms}`);
    else if (op.kind === "event") results.push({ name: op.name });
    else if (op.kind === "child") {
      const child = expectedOf(op.program);
      if (child.status === "completed") results.push(child.result);
      else if (op.caught) results.push(`caught ${child.error.name}: ${child.error.message}`);
      else return child;
    }
  }
  return { status: "completed", result: results };
}

/** The program with each sleep of `ms` made `nap(ms)` long: tests that run in real time keep them short. */
export function withSleeps(program: Op[], nap: (ms: number) => number): Op[] {
  return program.map((op): Op => {
    if (op.kind === "sleep") return { kind: "sleep", ms: nap(op.ms) };
    if (op.kind === "child") return { ...op, program: withSleeps(op.program, nap) };
    if (op.kind === "all")
      return {
        kind: "all",
        members: op.members.map((member) =>
          member.kind === "sleep" ? { kind: "sleep", ms: nap(member.ms) } : member,
        ),
      };
    return op;
  });
}

export function hasGroups(program: Op[]): boolean {
  return program.some((op) => op.kind === "all");
}

const specArb = fc.record({
  fails: fc.oneof(
    { weight: 5, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.integer({ min: 1, max: MAX_RETRIES }) },
    { weight: 1, arbitrary: fc.constant(MAX_RETRIES + 1) },
  ),
  fatal: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  caught: fc.boolean(),
});

const stepArb = specArb.map((spec) => ({ kind: "step" as const, step: { label: "", ...spec } }));
/** One second to two hours; retries wait 1 s, so a sleep may end before, with or after a retry. */
const sleepArb = fc.integer({ min: 1, max: 7_200 }).map((s) => ({ kind: "sleep" as const, ms: s * 1000 }));

const weighted = (arbitraries: [number, fc.Arbitrary<Op>][]) =>
  fc.oneof(...arbitraries.map(([weight, arbitrary]) => ({ weight, arbitrary })));

const groupArb: fc.Arbitrary<Op> = fc
  .array(fc.oneof({ weight: 3, arbitrary: stepArb }, { weight: 1, arbitrary: sleepArb }), {
    minLength: 2,
    maxLength: 3,
  })
  .map((members) => ({ kind: "all" as const, members }));

/** Operations of a child program: everything but further children. */
const leafOp: fc.Arbitrary<Op> = weighted([
  [4, stepArb],
  [2, groupArb],
  [2, sleepArb],
  [1, fc.constant({ kind: "log" as const, message: "checkpoint" })],
  [1, fc.constant({ kind: "event" as const, name: "" })],
]);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: leafOp },
  {
    weight: 1,
    arbitrary: fc
      .record({ program: fc.array(leafOp, { minLength: 1, maxLength: 3 }), caught: fc.boolean() })
      .map(({ program, caught }) => ({ kind: "child" as const, program, caught })),
  },
);

/**
 * Programs of 1 to 6 operations. Steps get labels s0, s1… and events names e0, e1… in program order. A
 * failure inside a Promise.all group is always caught: an uncaught one would end the group at the first
 * failure to arrive, so which sibling results reach the log would depend on arrival order (as documented).
 */
export const programs: fc.Arbitrary<Op[]> = fc.array(opArb, { minLength: 1, maxLength: 6 }).map((ops) => {
  let steps = 0;
  let events = 0;
  const label = (spec: StepSpec, inGroup: boolean): StepSpec => {
    const failsForGood = spec.fatal || spec.fails > MAX_RETRIES;
    return { ...spec, label: `s${steps++}`, caught: spec.caught || (inGroup && failsForGood) };
  };
  const relabel = (op: Op): Op => {
    if (op.kind === "step") return { kind: "step", step: label(op.step, false) };
    if (op.kind === "event") return { kind: "event", name: `e${events++}` };
    if (op.kind === "child") return { ...op, program: op.program.map(relabel) };
    if (op.kind === "all")
      return {
        kind: "all",
        members: op.members.map((member) =>
          member.kind === "step" ? { kind: "step", step: label(member.step, true) } : member,
        ),
      };
    return op;
  };
  return ops.map(relabel);
});
