import {
  configure,
  continueAsNew,
  getRun,
  InvalidRunQueryError,
  listRuns,
  type RunStatus,
  runChild,
  shutdown,
  start,
  step,
  WorkflowInputError,
  waitForRun,
  workflow,
} from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";

const Signup = z.object({
  email: z.email(),
  age: z.number().int().min(13),
  plan: z.enum(["free", "pro"]).default("free"),
});
type Signup = z.input<typeof Signup>;

const register = step(
  "input_register",
  async (signup: z.output<typeof Signup>) => `${signup.email}/${signup.plan}`,
);
const signupWorkflow = workflow("input_signup", async (signup: Signup) => register(Signup.parse(signup)), {
  input: Signup,
});

const transfer = workflow(
  "input_transfer",
  async (from: string, to: string, cents: number) => `${from}->${to}:${cents}`,
  { input: z.tuple([z.string().min(1), z.string().min(1), z.number().int().positive()]) },
);

async function rejection(promise: Promise<unknown>): Promise<WorkflowInputError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof WorkflowInputError) return error;
    throw error;
  }
  throw new Error("expected a WorkflowInputError");
}

// Every test runs on a runtime of its own, over memory.
beforeEach(() => {
  configure({ storage: new MemoryStorage() });
});

afterEach(async () => {
  await shutdown();
});

describe("workflow input validated with zod", () => {
  it("starts a run with valid input and stores the parsed input", async () => {
    // Prepare
    // Act
    const runId = await start(signupWorkflow, [{ email: "ann@example.com", age: 30 }]);
    // Assess
    const run = await waitForRun(runId);
    expect(run.status).toBe("completed");
    expect(run.input).toEqual([{ email: "ann@example.com", age: 30, plan: "free" }]);
    expect(run.result).toBe("ann@example.com/free");
  });

  it("rejects invalid input with a WorkflowInputError naming the field, and stores nothing", async () => {
    // Prepare
    const bad = { email: "ann@example.com", age: 9 };
    // Act
    const error = await rejection(start(signupWorkflow, [bad]));
    // Assess
    expect(error.name).toBe("WorkflowInputError");
    expect(error.code).toBe("INVALID_INPUT");
    expect(error.message).toContain('workflow "input_signup"');
    expect(error.message).toContain("age:");
    expect(error.issues.map((issue) => issue.path)).toEqual(["age"]);
    expect((await listRuns()).runs).toEqual([]);
  });

  it("names every field at fault", async () => {
    // Prepare
    const bad = { email: "not an email", age: "thirty", plan: "gold" } as unknown as Signup;
    // Act
    const error = await rejection(start(signupWorkflow, [bad]));
    // Assess
    expect(error.issues.map((issue) => issue.path).sort()).toEqual(["age", "email", "plan"]);
    for (const field of ["email", "age", "plan"]) expect(error.message).toContain(`${field}:`);
    expect((await listRuns()).runs).toEqual([]);
  });

  it("rejects a call with the wrong number of arguments for a single-argument schema", async () => {
    // Prepare
    const args = [{ email: "a@example.com", age: 20 }, "extra"] as unknown as [Signup];
    // Act
    const error = await rejection(start(signupWorkflow, args));
    // Assess
    expect(error.message).toContain("expected exactly 1 argument");
    expect((await listRuns()).runs).toEqual([]);
  });

  it("validates every argument of a multi-argument workflow with z.tuple", async () => {
    // Prepare
    // Act
    const runId = await start(transfer, ["alice", "bob", 500]);
    // Assess
    expect((await waitForRun(runId)).result).toBe("alice->bob:500");
  });

  it("names the position of a bad argument of a z.tuple schema, and stores nothing", async () => {
    // Prepare
    // Act
    const error = await rejection(start(transfer, ["alice", "", -5]));
    // Assess
    expect(error.issues.map((issue) => issue.path)).toEqual(["1", "2"]);
    expect((await listRuns()).runs).toEqual([]);
  });

  it("rejects invalid input in startLocal before anything is stored", async () => {
    // Prepare
    const storage = new MemoryStorage();
    // Act
    const error = await rejection(startLocal(transfer, ["alice", "bob", 1.5], { storage }));
    // Assess
    expect(error.issues.map((issue) => issue.path)).toEqual(["2"]);
    expect((await storage.listRuns()).runs).toEqual([]);
  });

  it("reports a run started with valid input through getRun", async () => {
    // Prepare
    const runId = await start(transfer, ["carol", "dan", 1]);
    await waitForRun(runId);
    // Act
    const run = await getRun(runId);
    // Assess
    expect(run).toMatchObject({ runId, workflowName: "input_transfer", input: ["carol", "dan", 1] });
  });
});

describe("listRuns' query and start's workflow argument", () => {
  it("refuses an unknown status and a limit that is not a number, showing the value as given", async () => {
    // Act
    const [status, limit] = await Promise.all(
      [listRuns({ status: "nope" as RunStatus }), listRuns({ limit: "10" as unknown as number })].map(
        (attempt) =>
          attempt.then(
            () => undefined,
            (error: unknown) => error,
          ),
      ),
    );
    // Assess
    expect(status).toBeInstanceOf(InvalidRunQueryError);
    expect((status as Error).message).toBe(
      'Invalid status "nope": use pending, running, suspended, completed, failed, cancelled, continued.',
    );
    expect((limit as Error).message).toContain('Invalid limit "10"');
  });

  it("says what start() takes when it is given something else, such as undefined from a wrong import", async () => {
    // Act
    const error = await start(undefined as unknown as typeof transfer, [] as never).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    // Assess
    expect(error).toMatchObject({
      name: "ConfigurationError",
      message: 'start() takes a workflow (the value workflow("name", fn) returned); it got undefined.',
    });
    expect((await listRuns()).runs).toEqual([]);
  });
});

describe("input a workflow refuses, given by another workflow", () => {
  const childParent = workflow("input_child_parent", async (signup: Signup, argumentsAsArray: boolean) => {
    try {
      // A JavaScript caller (or a cast) can pass the arguments without their array.
      return await runChild(signupWorkflow, (argumentsAsArray ? [signup] : signup) as [Signup]);
    } catch (error) {
      return `caught ${(error as Error).name}: ${(error as Error).message}`;
    }
  });
  const uncaughtParent = workflow("input_child_uncaught", async () =>
    runChild(signupWorkflow, [{ email: "not an email", age: 30 }]),
  );
  const renewal = workflow(
    "input_renewal",
    async (month: number) => (month < 2 ? continueAsNew(month === 1 ? -1 : month + 1) : `month ${month}`),
    { input: z.number().int().min(0) },
  );

  it("fails runChild() with the child's WorkflowInputError, once, instead of retrying the parent for ever", async () => {
    // Act: a child input that fails the child's schema, and one that is not an argument array at all.
    const badSchema = await start(childParent, [{ email: "ann@example", age: 30 }, true]);
    const notArray = await start(childParent, [{ email: "ann@example.com", age: 30 }, false]);
    const uncaught = await start(uncaughtParent, []);
    // Assess: the parent hears of it as a failed child, and no child run was stored.
    const [first, second, third] = await Promise.all(
      [badSchema, notArray, uncaught].map((runId) => waitForRun(runId, { timeoutMs: 5_000 })),
    );
    expect(first?.result).toMatch(
      /^caught WorkflowInputError: Invalid input for workflow "input_signup": email: /,
    );
    expect(second?.result).toBe(
      'caught WorkflowInputError: Invalid input for workflow "input_signup": (input): arguments must be an array, e.g. start(wf, [arg1, arg2]). Nothing was stored.',
    );
    expect(third).toMatchObject({ status: "failed", error: { name: "WorkflowInputError" } });
    const { runs } = await listRuns({ workflowName: "input_signup" });
    expect(runs).toEqual([]);
  });

  it("throws WorkflowInputError from continueAsNew() when the next run's input fails the schema", async () => {
    // Act: month 0 continues with 1, month 1 with -1, which the schema refuses.
    const runId = await start(renewal, [0]);
    const last = await waitForRun(runId, { followContinuations: true, timeoutMs: 5_000 });
    // Assess: the run that called continueAsNew(-1) failed with the error; nothing continues it.
    expect(last).toMatchObject({ status: "failed", error: { name: "WorkflowInputError" } });
    expect(last?.error?.message).toContain('Invalid input for workflow "input_renewal"');
    expect(last?.continuedAs).toBeUndefined();
  });
});
