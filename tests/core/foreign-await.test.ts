import { configureLogging, ForeignAwaitError, step, workflow } from "tsworkflow";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualEngine } from "./support/manual-engine.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

const greet = step("foreign_greet", async (name: string) => `hello ${name}`);

const awaitsTimer = workflow("foreign_awaits_timer", async () => {
  await greet("ann");
  await new Promise((resolve) => setTimeout(resolve, 50));
  return greet("bob");
});

const awaitsForever = workflow("foreign_awaits_forever", async () => {
  await new Promise(() => {});
});

describe("a workflow that awaits something outside tsworkflow", () => {
  it("fails its run with ForeignAwaitError naming the cause, in the embedded runtime", async () => {
    // Prepare
    const storage = new MemoryStorage();
    const runtime = new LocalRuntime({ storage });
    try {
      // Act
      const { runId } = await runtime.start(awaitsTimer, []);
      const run = await runtime.waitForRun(runId, { timeoutMs: 30_000 });
      // Assess
      expect(run.status).toBe("failed");
      expect(run.error).toMatchObject({ name: "ForeignAwaitError", code: "FOREIGN_AWAIT" });
      expect(run.error?.message).toContain("setTimeout, fetch");
      const types = (await storage.getEvents(runId)).map((event) => event.type);
      expect(types).toContain("step_completed");
      expect(types.at(-1)).toBe("workflow_failed");
    } finally {
      await runtime.close();
    }
  });

  it("fails its run with ForeignAwaitError when it awaits a promise that never settles, on replay too", async () => {
    // Prepare
    const m = manualEngine({ cacheSize: 0 });
    // Act
    const { runId } = await m.engine.start(awaitsForever, []);
    await m.runToEnd();
    // Assess
    const run = await m.run(runId);
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe("ForeignAwaitError");
    expect(new ForeignAwaitError("x")).toBeInstanceOf(ForeignAwaitError);
  });
});
