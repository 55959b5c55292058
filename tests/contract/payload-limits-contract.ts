/**
 * The payload rules (lib/engine/payload-rules.ts) on every EventStore adapter: the engine measures each
 * value against the limit the store declares, and what is over it fails the same way on memory, file,
 * Redis and DynamoDB. Run from `describeEventStoreContract`, so every adapter's contract runs it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PayloadTooLargeError, RetryableError } from "../../lib/core/errors.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { waitForEvent } from "../../lib/core/primitives.ts";
import { MAX_PAYLOAD_BYTES } from "../../lib/core/serialization.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import type { EventStore } from "../../lib/ports/event-store.ts";
import { manualEngine } from "../core/support/manual-engine.ts";

/** A string whose JSON is exactly `bytes` long (UTF-8): `"x…x"`. */
function jsonOfBytes(bytes: number): string {
  return "x".repeat(bytes - 2);
}

/** The single argument of a one-parameter call whose input (`[value]`) is exactly `bytes` of JSON. */
const argumentOfBytes = (bytes: number) => jsonOfBytes(bytes - 2);

const executions = { produce: 0, fail: 0, consume: 0 };

const produce = step(
  "payload_contract_produce",
  async (bytes: number) => {
    executions.produce += 1;
    return jsonOfBytes(bytes);
  },
  { maxRetries: 3 },
);
const produceResult = workflow(
  "payload_contract_result",
  async (bytes: number) => (await produce(bytes)).length,
);

const fail = step(
  "payload_contract_fail",
  async (bytes: number) => {
    executions.fail += 1;
    throw new RetryableError(`upstream said: ${"é".repeat(bytes)}`, { retryAfter: "1s" });
  },
  { maxRetries: 1 },
);
const failLoudly = workflow("payload_contract_error", async (bytes: number) => fail(bytes));

const consume = step("payload_contract_consume", async (value: string) => {
  executions.consume += 1;
  return value.length;
});
const sendInput = workflow("payload_contract_task", async (value: string) => consume(value));

const takeInput = workflow("payload_contract_input", async (value: string) => value.length);

const awaitDocument = workflow(
  "payload_contract_event",
  async () => (await waitForEvent<string>("document")).length,
);

const at2030 = /^2030-01-01T00:00:00\.\d{3}Z$/;

/** The stored outcome of an attempt, found under the seq of the `step_started` that issued it. */
async function storedOutcome(store: EventStore, runId: string, attempt: number) {
  const started = (await store.getEvents(runId)).find(
    (event) => event.type === "step_started" && event.attempt === attempt,
  );
  if (started?.type !== "step_started") throw new Error(`no attempt ${attempt} in run ${runId}`);
  return store.getOutcome(runId, started.stepId, attempt, started.seq);
}
const stepEvents = (events: readonly WorkflowEvent[]) =>
  events
    .filter((event) => event.type.startsWith("step_"))
    .map((event) => [event.type, "attempt" in event ? event.attempt : 0]);

/** The payload rules, against one store (made fresh by the caller for each test). */
export function describePayloadLimitsContract(store: () => EventStore): void {
  describe("payload limits (the engine's rules, against the limit the store declares)", () => {
    // The runs fail on purpose: their warnings (with errors of a few hundred KB) would flood the output.
    beforeAll(() => configureLogging({ level: "silent" }));
    afterAll(() => configureLogging());

    const limitOf = (s: EventStore) => s.limits?.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;

    it("refuses a workflow input a byte over the limit before storing anything, and holds one exactly at it", async () => {
      // Prepare
      const { engine, store: s } = manualEngine({ store: store() });
      const limit = limitOf(s);
      // Act
      const over = engine.start(takeInput, [argumentOfBytes(limit + 1)]);
      // Assess
      await expect(over).rejects.toBeInstanceOf(PayloadTooLargeError);
      expect((await s.listRuns({ workflowName: "payload_contract_input" })).runs).toEqual([]);
      const { runId } = await engine.start(takeInput, [argumentOfBytes(limit)]);
      expect((await s.getRun(runId))?.input).toEqual([argumentOfBytes(limit)]);
    });

    it("fails a step whose result is a byte over the limit at its first attempt, at the engine's clock, and never retries it", async () => {
      // Prepare
      executions.produce = 0;
      const harness = manualEngine({ store: store() });
      const { runId } = await harness.engine.start(produceResult, [limitOf(harness.store) + 1]);
      // Act
      await harness.runToEnd();
      // Assess
      const run = await harness.run(runId);
      expect(run.status).toBe("failed");
      expect(run.error).toMatchObject({ name: "PayloadTooLargeError", code: "PAYLOAD_TOO_LARGE" });
      expect(executions.produce).toBe(1);
      expect(stepEvents(await harness.events(runId))).toEqual([
        ["step_started", 1],
        ["step_failed", 1],
      ]);
      const outcome = await storedOutcome(harness.store, runId, 1);
      expect(outcome).toMatchObject({ ok: false, error: { code: "PAYLOAD_TOO_LARGE" } });
      expect(outcome?.recordedAt).toMatch(at2030);
    });

    it("keeps a step error over the limit cut to fit, with its name and code, and retries it as its policy says", async () => {
      // Prepare
      executions.fail = 0;
      const harness = manualEngine({ store: store() });
      const limit = limitOf(harness.store);
      const { runId } = await harness.engine.start(failLoudly, [limit]);
      // Act
      await harness.runToEnd();
      // Assess
      expect(executions.fail).toBe(2);
      expect(stepEvents(await harness.events(runId))).toEqual([
        ["step_started", 1],
        ["step_retrying", 1],
        ["step_started", 2],
        ["step_failed", 2],
      ]);
      for (const attempt of [1, 2]) {
        const outcome = await storedOutcome(harness.store, runId, attempt);
        if (outcome?.ok !== false)
          throw new Error(`attempt ${attempt} failed, and its outcome says otherwise`);
        expect(outcome.error).toMatchObject({
          name: "RetryableError",
          code: "RETRYABLE",
          retryAfterMs: 1_000,
        });
        expect(outcome.error.message).toMatch(/^upstream said: éé.* \[cut from \d+ bytes\]$/s);
        expect(Buffer.byteLength(JSON.stringify(outcome.error))).toBeLessThanOrEqual(limit);
      }
    });

    it("fails a step attempt whose task is over the queue's limit before sending it, at the engine's clock, and never retries it", async () => {
      // Prepare
      executions.consume = 0;
      const harness = manualEngine({ store: store(), queueLimits: { maxTaskBytes: 2_000 } });
      const { runId } = await harness.engine.start(sendInput, ["x".repeat(3_000)]);
      // Act
      await harness.runToEnd();
      // Assess
      expect(executions.consume).toBe(0);
      const run = await harness.run(runId);
      expect(run.status).toBe("failed");
      expect(run.error).toMatchObject({ name: "PayloadTooLargeError" });
      expect(run.error?.message).toContain("The task of step payload_contract_consume#0 (attempt 1) is");
      expect(stepEvents(await harness.events(runId))).toEqual([
        ["step_started", 1],
        ["step_failed", 1],
      ]);
      expect((await storedOutcome(harness.store, runId, 1))?.recordedAt).toMatch(at2030);
    });

    it("refuses an event payload a byte over the limit without storing it, and delivers one exactly at it", async () => {
      // Prepare
      const harness = manualEngine({ store: store() });
      const limit = limitOf(harness.store);
      const { runId } = await harness.engine.start(awaitDocument, []);
      await harness.runQueued();
      // Act
      const over = harness.engine.sendEvent(runId, "document", jsonOfBytes(limit + 1));
      // Assess
      await expect(over).rejects.toBeInstanceOf(PayloadTooLargeError);
      expect(await harness.store.listOutcomes(runId)).toEqual([]);
      expect(await harness.engine.sendEvent(runId, "document", jsonOfBytes(limit))).toEqual({
        delivered: true,
      });
      await harness.runQueued();
      expect(await harness.run(runId)).toMatchObject({ status: "completed", result: limit - 2 });
    });
  });
}
