/**
 * Users' schemas may be zod/mini (the lean choice for a Lambda bundle) as well as regular zod. This file
 * loads zod/mini only, so the English messages in the errors are tsworkflow's doing, not regular zod's
 * global locale.
 */
import { EventPayloadError, WorkflowInputError, waitForEvent, workflow } from "tsworkflow";
import { afterEach, describe, expect, it } from "vitest";
import * as z from "zod/mini";
import { virtualRuntime } from "../features/support.ts";

const Signup = z.object({
  email: z.string().check(z.email()),
  age: z.number().check(z.int(), z.minimum(13)),
});

const signup = workflow("mini_signup", async (input: z.infer<typeof Signup>) => input.email, {
  input: Signup,
});

const approval = workflow("mini_approval", async () => {
  const decision = await waitForEvent("approval", { schema: z.object({ approved: z.boolean() }) });
  return decision.approved;
});

describe("zod/mini schemas", () => {
  let env: ReturnType<typeof virtualRuntime>;
  afterEach(() => env.close());

  it("validate a workflow's input at start, naming each field with zod's English message", async () => {
    // Prepare
    env = virtualRuntime();

    // Act
    const started = env.runtime.start(signup, [{ email: "not-an-email", age: "12" } as never]);

    // Assess
    const error = await started.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WorkflowInputError);
    expect((error as Error).message).toContain("email: Invalid email address");
    expect((error as Error).message).toContain("age: Invalid input: expected number, received string");
    expect((await env.storage.listRuns()).runs).toEqual([]);
  });

  it("start a run whose input passes", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(signup, [{ email: "ann@example.com", age: 30 }]);
    await env.settle();
    expect(await env.run(runId)).toMatchObject({ status: "completed", result: "ann@example.com" });
  });

  it("check the payload of waitForEvent, failing the wait on a payload that does not match", async () => {
    // Prepare
    env = virtualRuntime();
    const { runId } = await env.runtime.start(approval, []);
    await env.settle();

    // Act
    await env.runtime.sendEvent(runId, "approval", { approved: "yes" });
    await env.settle();

    // Assess
    const run = await env.run(runId);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ name: EventPayloadError.name });
    expect(run.error?.message).toContain("approved: Invalid input: expected boolean, received string");
  });
});
