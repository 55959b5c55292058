import {
  configure,
  IdempotencyConflictError,
  InvalidIdempotencyKeyError,
  listRuns,
  shutdown,
  start,
  step,
  waitForRun,
  workflow,
} from "tsworkflow";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { afterEach, describe, expect, it } from "vitest";
import { manualEngine } from "./support/manual-engine.ts";

let bodies = 0;
const welcome = step("idem_welcome", async (user: { id: string; plan?: string }) => `welcome ${user.id}`);
const onboard = workflow("idem_onboard", async (user: { id: string; plan?: string }) => {
  bodies += 1;
  return welcome(user);
});

describe("idempotent start", () => {
  afterEach(async () => {
    await shutdown();
  });

  it("returns the same run id for the same key and input through the top-level start", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    const first = await start(onboard, [{ id: "u1" }], { idempotencyKey: "onboard-u1" });
    // Act
    const second = await start(onboard, [{ id: "u1" }], { idempotencyKey: "onboard-u1" });
    // Assess
    expect(second).toBe(first);
    expect((await waitForRun(first)).status).toBe("completed");
    expect((await listRuns({ workflowName: "idem_onboard" })).runs).toHaveLength(1);
  });

  it("starts one run for 50 concurrent starts with one key", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    bodies = 0;
    // Act
    const ids = await Promise.all(
      Array.from({ length: 50 }, () => start(onboard, [{ id: "u50" }], { idempotencyKey: "onboard-u50" })),
    );
    // Assess
    expect(new Set(ids).size).toBe(1);
    const run = await waitForRun(ids[0] as string);
    expect(run.status).toBe("completed");
    expect((await listRuns({ workflowName: "idem_onboard" })).runs).toHaveLength(1);
    expect(bodies).toBe(1);
  });

  it("throws IdempotencyConflictError for the same key with another input", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    const first = await start(onboard, [{ id: "u2" }], { idempotencyKey: "onboard-u2" });
    // Act
    const conflicting = start(onboard, [{ id: "u3" }], { idempotencyKey: "onboard-u2" });
    // Assess
    await expect(conflicting).rejects.toThrow(IdempotencyConflictError);
    await expect(conflicting).rejects.toMatchObject({
      name: "IdempotencyConflictError",
      code: "IDEMPOTENCY_CONFLICT",
      existingRunId: first,
    });
    await expect(conflicting).rejects.toThrow(/onboard-u2/);
    expect((await listRuns({ workflowName: "idem_onboard" })).runs).toHaveLength(1);
  });

  it("throws IdempotencyConflictError for the same key used by another workflow", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    const other = workflow("idem_other", async (user: { id: string }) => user.id);
    await start(onboard, [{ id: "u11" }], { idempotencyKey: "shared-key" });
    // Act
    const conflicting = start(other, [{ id: "u11" }], { idempotencyKey: "shared-key" });
    // Assess
    await expect(conflicting).rejects.toThrow(IdempotencyConflictError);
  });

  it("treats inputs that differ only in the order of object keys as the same input", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    const first = await start(onboard, [{ id: "u4", plan: "pro" }], { idempotencyKey: "onboard-u4" });
    // Act
    const second = await start(onboard, [{ plan: "pro", id: "u4" }], { idempotencyKey: "onboard-u4" });
    // Assess
    expect(second).toBe(first);
  });

  it("starts separate runs without a key, and with different keys", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    // Act
    const ids = [
      await start(onboard, [{ id: "u5" }]),
      await start(onboard, [{ id: "u5" }]),
      await start(onboard, [{ id: "u5" }], { idempotencyKey: "onboard-u5-a" }),
      await start(onboard, [{ id: "u5" }], { idempotencyKey: "onboard-u5-b" }),
    ];
    // Assess
    expect(new Set(ids).size).toBe(4);
  });

  it("rejects an empty idempotency key with InvalidIdempotencyKeyError", async () => {
    // Prepare
    configure({ storage: new MemoryStorage() });
    // Act
    const started = start(onboard, [{ id: "u6" }], { idempotencyKey: "" });
    // Assess
    await expect(started).rejects.toThrow(InvalidIdempotencyKeyError);
    expect((await listRuns()).runs).toEqual([]);
  });

  it("returns the same run id from a LocalRuntime, saying the second start created nothing", async () => {
    // Prepare
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const first = await runtime.start(onboard, [{ id: "u7" }], { idempotencyKey: "onboard-u7" });
    // Act
    const second = await runtime.start(onboard, [{ id: "u7" }], { idempotencyKey: "onboard-u7" });
    const conflict = runtime.start(onboard, [{ id: "u8" }], { idempotencyKey: "onboard-u7" });
    // Assess
    expect(first.created).toBe(true);
    expect(second).toEqual({ runId: first.runId, created: false });
    await expect(conflict).rejects.toThrow(IdempotencyConflictError);
    expect((await runtime.waitForRun(first.runId)).status).toBe("completed");
    await runtime.close();
  });

  it("starts one run from 50 concurrent Engine starts with one key", async () => {
    // Prepare
    const { engine, store } = manualEngine();
    // Act
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        engine.start(onboard, [{ id: "u9" }], { idempotencyKey: "onboard-u9" }),
      ),
    );
    // Assess
    expect(new Set(results.map((r) => r.runId)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect((await store.listRuns()).runs).toHaveLength(1);
  });

  it("returns the same run id from startLocal for the same key and input", async () => {
    // Prepare
    const storage = new MemoryStorage();
    const first = await startLocal(onboard, [{ id: "u10" }], { storage, idempotencyKey: "onboard-u10" });
    // Act
    const second = await startLocal(onboard, [{ id: "u10" }], { storage, idempotencyKey: "onboard-u10" });
    // Assess
    expect(second).toBe(first);
    expect((await storage.listRuns()).runs).toHaveLength(1);
  });
});
