/**
 * The payload cap (MAX_PAYLOAD_BYTES of JSON, counted in UTF-8 bytes) at its edge: a value of exactly
 * the cap passes, one byte more fails with PayloadTooLargeError, for each place a value enters the log.
 */
import {
  configureLogging,
  MAX_PAYLOAD_BYTES,
  PayloadTooLargeError,
  type RunRecord,
  step,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

/** A string whose JSON is `bytes` long: `"x…x"`, or two-byte `"é…é"` to show that bytes count, not characters. */
function stringOfJsonBytes(bytes: number, char: "x" | "é" = "x"): string {
  const width = Buffer.byteLength(char);
  const value = char.repeat(Math.floor((bytes - 2) / width)) + "x".repeat((bytes - 2) % width);
  if (Buffer.byteLength(JSON.stringify(value)) !== bytes) throw new Error(`cannot build ${bytes} bytes`);
  return value;
}

/** The step's input is `[value]`: two brackets around the string's JSON. */
const argumentOfBytes = (bytes: number) => stringOfJsonBytes(bytes - 2);

const measure = step("limits_measure", async (value: string) => value.length);
const stepInput = workflow("limits_step_input", async (bytes: number) => measure(argumentOfBytes(bytes)));

const produce = step("limits_produce", async (bytes: number) => stringOfJsonBytes(bytes, "é"));
const stepResult = workflow("limits_step_result", async (bytes: number) => (await produce(bytes)).length);

const workflowResult = workflow("limits_workflow_result", async (bytes: number) => stringOfJsonBytes(bytes));

const takeInput = workflow("limits_workflow_input", async (value: string) => value.length);

const awaitPayload = workflow(
  "limits_event_payload",
  async () => (await waitForEvent<string>("upload")).length,
);

let runtime: LocalRuntime;

beforeAll(() => {
  configureLogging({ level: "silent" });
});

afterAll(() => {
  configureLogging();
});

beforeEach(() => {
  runtime = new LocalRuntime({ storage: new MemoryStorage() });
});

afterEach(async () => {
  await runtime.close();
});

async function finished(runId: string): Promise<RunRecord> {
  return runtime.waitForRun(runId, { timeoutMs: 20_000 });
}

describe(`payloads at the cap of ${MAX_PAYLOAD_BYTES} bytes`, () => {
  it("runs a step whose input is exactly at the cap", async () => {
    // Prepare
    // Act
    const { runId } = await runtime.start(stepInput, [MAX_PAYLOAD_BYTES]);
    const run = await finished(runId);
    // Assess
    expect(run.status).toBe("completed");
    expect(run.result).toBe(MAX_PAYLOAD_BYTES - 4);
  });

  it("fails the workflow, without starting the step, when a step's input is one byte over", async () => {
    // Prepare
    // Act
    const { runId } = await runtime.start(stepInput, [MAX_PAYLOAD_BYTES + 1]);
    const run = await finished(runId);
    // Assess
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ name: "PayloadTooLargeError", code: "PAYLOAD_TOO_LARGE" });
    expect(run.error?.message).toContain('The input of step "limits_measure"');
    expect(run.error?.message).toContain(`${MAX_PAYLOAD_BYTES + 1} bytes`);
    const events = await runtime.getEvents(runId);
    expect(events.filter((event) => event.type === "step_started")).toEqual([]);
  });

  it("keeps a step result exactly at the cap, counted in UTF-8 bytes", async () => {
    // Prepare
    // Act
    const { runId } = await runtime.start(stepResult, [MAX_PAYLOAD_BYTES]);
    const run = await finished(runId);
    // Assess
    expect(run.status).toBe("completed");
    expect(run.result).toBe((MAX_PAYLOAD_BYTES - 2) / 2);
  });

  it("fails a step whose result is one byte over at its first attempt, without retrying it", async () => {
    // Prepare
    // Act
    const { runId } = await runtime.start(stepResult, [MAX_PAYLOAD_BYTES + 1]);
    const run = await finished(runId);
    // Assess
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe("PayloadTooLargeError");
    expect(run.error?.message).toContain('The result of step "limits_produce"');
    const types = (await runtime.getEvents(runId)).map((event) => event.type);
    expect(types).toEqual(["workflow_started", "step_started", "step_failed", "workflow_failed"]);
  });

  it("starts a run whose input is exactly at the cap, and refuses one byte more before storing anything", async () => {
    // Prepare
    const fits = stringOfJsonBytes(MAX_PAYLOAD_BYTES - 2);
    const over = stringOfJsonBytes(MAX_PAYLOAD_BYTES - 1);
    // Act
    const { runId } = await runtime.start(takeInput, [fits]);
    const refused = runtime.start(takeInput, [over]);
    // Assess
    await expect(refused).rejects.toThrow(PayloadTooLargeError);
    await expect(refused).rejects.toThrow(`The input of workflow "limits_workflow_input"`);
    expect((await finished(runId)).result).toBe(fits.length);
    expect((await runtime.listRuns()).runs.map((run) => run.runId)).toEqual([runId]);
  });

  it("completes a run whose result is exactly at the cap, and fails one whose result is a byte over", async () => {
    // Prepare
    // Act
    const fits = await runtime.start(workflowResult, [MAX_PAYLOAD_BYTES]);
    const over = await runtime.start(workflowResult, [MAX_PAYLOAD_BYTES + 1]);
    // Assess
    expect((await finished(fits.runId)).status).toBe("completed");
    const failed = await finished(over.runId);
    expect(failed.status).toBe("failed");
    expect(failed.error?.name).toBe("PayloadTooLargeError");
    expect(failed.error?.message).toContain('The result of workflow "limits_workflow_result"');
  });

  it("delivers an event payload exactly at the cap, and refuses one byte more without storing it", async () => {
    // Prepare
    const { runId } = await runtime.start(awaitPayload, []);
    await runtime.idle();
    const over = stringOfJsonBytes(MAX_PAYLOAD_BYTES + 1);
    const fits = stringOfJsonBytes(MAX_PAYLOAD_BYTES);
    // Act
    const refused = runtime.sendEvent(runId, "upload", over);
    await refused.catch(() => {});
    await runtime.idle();
    const stillWaiting = await runtime.getRun(runId);
    await runtime.sendEvent(runId, "upload", fits);
    const run = await finished(runId);
    // Assess
    await expect(refused).rejects.toThrow(PayloadTooLargeError);
    await expect(refused).rejects.toThrow('The payload of event "upload"');
    expect(stillWaiting?.status).toBe("suspended");
    expect(run.status).toBe("completed");
    expect(run.result).toBe(fits.length);
  });
});
