import {
  configure,
  FatalError,
  getEvents,
  getRun,
  InvalidRunIdError,
  RunNotFoundError,
  type RunStatus,
  shutdown,
  sleep,
  start,
  step,
  waitForRun,
  workflow,
} from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { afterEach, describe, expect, it } from "vitest";
import { manualEngine } from "./support/manual-engine.ts";

const prepare = step("status_prepare", async (order: string) => `prepared ${order}`);
const decline = step("status_decline", async (order: string): Promise<string> => {
  throw new FatalError(`order ${order} declined`);
});
const lifecycle = workflow("status_lifecycle", async (order: string) => {
  const prepared = await prepare(order);
  await sleep("1h");
  return `${prepared}, shipped`;
});
const declined = workflow("status_declined", async (order: string) => decline(order));

describe("run statuses", () => {
  afterEach(async () => {
    await shutdown();
  });

  it("goes from pending to running to suspended to completed", async () => {
    // Prepare
    const m = manualEngine();
    const seen: RunStatus[] = [];
    const status = async (runId: string) => seen.push((await m.run(runId)).status);
    // Act
    const { runId } = await m.engine.start(lifecycle, ["o-1"]);
    await status(runId);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    await status(runId);
    for (const task of m.queue.takeSteps()) await m.engine.executeStep(task);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    await status(runId);
    await m.runToEnd();
    await status(runId);
    // Assess
    expect(seen).toEqual(["pending", "running", "suspended", "completed"]);
    const run = await m.run(runId);
    expect(run).toMatchObject({
      runId,
      workflowName: "status_lifecycle",
      status: "completed",
      input: ["o-1"],
      result: "prepared o-1, shipped",
    });
    expect(run.error).toBeUndefined();
    expect(Date.parse(run.updatedAt)).toBe(Date.parse(run.createdAt) + 3_600_000);
  });

  it("ends as failed with the error when the workflow throws", async () => {
    // Prepare
    const m = manualEngine();
    const { runId } = await m.engine.start(declined, ["o-2"]);
    // Act
    await m.runToEnd();
    // Assess
    const run = await m.run(runId);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ name: "FatalError", message: "order o-2 declined" });
    expect(run.result).toBeUndefined();
  });

  it("reports the finished run through the top-level getRun and getEvents", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    const runId = await start(declined, ["o-3"]);
    await waitForRun(runId);
    // Act
    const run = await getRun(runId);
    const events = await getEvents(runId);
    // Assess
    expect(run.status).toBe("failed");
    expect(typeof run.createdAt).toBe("string");
    expect(typeof run.updatedAt).toBe("string");
    expect(events.at(-1)?.type).toBe("workflow_failed");
  });

  it("throws RunNotFoundError from getRun for an unknown run id", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    // Act
    const lookup = getRun("run_does_not_exist");
    // Assess
    await expect(lookup).rejects.toThrow(RunNotFoundError);
    await expect(lookup).rejects.toMatchObject({ name: "RunNotFoundError", code: "RUN_NOT_FOUND" });
  });

  it.each(["../x", "a/b", "", "run id with spaces", "x".repeat(129)])(
    "throws InvalidRunIdError from getRun for the malformed id %j",
    async (runId) => {
      // Prepare
      configure({ storage: new MemoryStorage() });
      // Act
      const lookup = getRun(runId);
      // Assess
      await expect(lookup).rejects.toThrow(InvalidRunIdError);
      await expect(lookup).rejects.toMatchObject({ code: "INVALID_RUN_ID" });
    },
  );

  it("throws InvalidRunIdError from waitForRun and getEvents for a malformed id", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    // Act
    const waited = waitForRun("../x");
    const events = getEvents("../x");
    // Assess
    await expect(waited).rejects.toThrow(InvalidRunIdError);
    await expect(events).rejects.toThrow(InvalidRunIdError);
  });
});
