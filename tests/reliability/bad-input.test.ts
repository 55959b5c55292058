/**
 * Bad input that reaches the engine: unknown workflows, step tasks naming a run id that could escape a
 * key or a path, and step results the log cannot hold (beyond tests/core/serialization.test.ts). Each
 * gets a clear, typed error; nothing is stored for it; the engine goes on serving other runs.
 */
import { configureLogging, InvalidRunIdError, step, WorkflowNotFoundError, workflow } from "tsworkflow";
import type { StepTask } from "tsworkflow/engine";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualEngine } from "../core/support/manual-engine.ts";

beforeAll(() => {
  configureLogging({ level: "silent" });
});

afterAll(() => {
  configureLogging();
});

let sideEffects = 0;
const transfer = step("bad_transfer", async (cents: number) => {
  sideEffects += 1;
  return { transferred: cents };
});
const payout = workflow("bad_payout", async (cents: number) => transfer(cents));

let produce: () => unknown = () => null;
const producer = step("bad_producer", async () => produce());
const producing = workflow("bad_producing", async () => producer());

class Money {
  constructor(readonly cents: number) {}
}

describe("unknown workflows", () => {
  it("refuses to start a workflow by a name no module registered, storing nothing, and goes on with others", async () => {
    // Prepare
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    // Act
    const refused = runtime.start("bad_no_such_workflow", []);
    // Checked below; handled now so that its rejection is not reported as unhandled meanwhile.
    refused.catch(() => {});
    const { runId } = await runtime.start("bad_payout", [5]);
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    // Assess
    await expect(refused).rejects.toThrow(WorkflowNotFoundError);
    await expect(refused).rejects.toMatchObject({ code: "WORKFLOW_NOT_FOUND" });
    await expect(refused).rejects.toThrow('No workflow named "bad_no_such_workflow" is registered');
    expect(run.workflowName).toBe(payout.name);
    expect(run.result).toEqual({ transferred: 5 });
    expect((await runtime.listRuns()).runs.map((listed) => listed.runId)).toEqual([runId]);
    await runtime.close();
  });
});

describe("step tasks with a malformed run id", () => {
  it.each(["../x", "a}:{b", "IDEM#x", "", "x".repeat(129), "run\u0000id"])(
    "runs no step function, stores nothing and wakes nothing for the run id %j",
    async (runId) => {
      // Prepare
      const m = manualEngine();
      sideEffects = 0;
      const task: StepTask = {
        runId,
        workflowName: "bad_payout",
        stepId: "bad_transfer#0",
        stepName: "bad_transfer",
        attempt: 1,
        input: [100],
      };
      // Act
      const executed = m.engine.executeStep(task);
      // Assess
      await expect(executed).rejects.toThrow(InvalidRunIdError);
      expect(sideEffects).toBe(0);
      expect(await m.store.listOutcomes(runId)).toEqual([]);
      expect(m.queue.activations).toEqual([]);
    },
  );
});

describe("step results the log cannot hold", () => {
  it.each([
    ["a symbol", () => ({ tag: Symbol("t") }), "value.tag is a symbol"],
    ["Infinity", () => ({ ratio: Number.POSITIVE_INFINITY }), "value.ratio is Infinity"],
    ["a class instance", () => ({ price: new Money(5) }), "value.price is a Money"],
    ["a Buffer", () => ({ bytes: Buffer.from("hi") }), "value.bytes is a Buffer"],
    ["an Error object", () => ({ problem: new Error("x") }), "value.problem is a Error"],
    ["a Promise", () => ({ later: Promise.resolve(1) }), "value.later is a Promise"],
    ["undefined deep in an array", () => ({ rows: [[1], [undefined]] }), "value.rows[1][0] is undefined"],
  ])("fails the step at once with NonSerializableError when it returns %s", async (_what, value, path) => {
    // Prepare
    produce = value;
    const storage = new MemoryStorage();
    // Act
    const runId = await startLocal(producing, [], { storage, timeSkipping: true });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("failed");
    expect(run?.error).toMatchObject({ name: "NonSerializableError", code: "NOT_SERIALIZABLE" });
    expect(run?.error?.message).toContain(path);
    const types = (await storage.getEvents(runId)).map((event) => event.type);
    expect(types).toEqual(["workflow_started", "step_started", "step_failed", "workflow_failed"]);
  });
});
