import { describe, expect, it } from "vitest";
import { PayloadTooLargeError, type SerializedError } from "../../lib/core/errors.ts";
import { MAX_PAYLOAD_BYTES } from "../../lib/core/serialization.ts";
import {
  failedAttempt,
  payloadLimit,
  storableError,
  taskTooLarge,
  tooLargeWhenSent,
} from "../../lib/engine/payload-rules.ts";
import type { StepTask } from "../../lib/ports/task-queue.ts";

const task = (input: unknown[]): StepTask => ({
  runId: "run_rules",
  workflowName: "wf",
  stepId: "upload#0",
  stepName: "upload",
  attempt: 2,
  input,
  issueSeq: 7,
});

const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

describe("payloadLimit", () => {
  it("is the store's declared limit, or MAX_PAYLOAD_BYTES for a store that declares none", () => {
    expect(payloadLimit({ maxPayloadBytes: 1234 })).toBe(1234);
    expect(payloadLimit(undefined)).toBe(MAX_PAYLOAD_BYTES);
  });
});

describe("taskTooLarge", () => {
  it("lets a task exactly at the queue's limit through, and names the step of one a byte over", () => {
    // Prepare
    const fits = task(["x".repeat(100)]);
    const max = bytesOf(fits);
    // Act
    const atLimit = taskTooLarge(fits, { maxTaskBytes: max });
    const over = taskTooLarge(task(["x".repeat(101)]), { maxTaskBytes: max });
    // Assess
    expect(atLimit).toBeUndefined();
    expect(over).toBeInstanceOf(PayloadTooLargeError);
    expect(over?.message).toContain(`The task of step upload#0 (attempt 2) is ${max + 1} bytes`);
  });

  it("counts UTF-8 bytes, not characters", () => {
    const accented = task(["é".repeat(100)]);
    expect(taskTooLarge(accented, { maxTaskBytes: bytesOf(accented) - 1 })).toBeInstanceOf(
      PayloadTooLargeError,
    );
    expect(taskTooLarge(accented, { maxTaskBytes: bytesOf(accented) })).toBeUndefined();
  });

  it("lets any task through a queue without a limit or with an infinite one", () => {
    const huge = task(["x".repeat(1_000_000)]);
    expect(taskTooLarge(huge, undefined)).toBeUndefined();
    expect(taskTooLarge(huge, { maxTaskBytes: Number.POSITIVE_INFINITY })).toBeUndefined();
  });
});

describe("tooLargeWhenSent", () => {
  it("takes a queue's PayloadTooLargeError as the task's refusal and throws any other error again", () => {
    const refusal = new PayloadTooLargeError("The message", 10, 5);
    expect(tooLargeWhenSent(refusal)).toBe(refusal);
    const outage = new Error("connection reset");
    expect(() => tooLargeWhenSent(outage)).toThrow(outage);
  });
});

describe("failedAttempt", () => {
  it("records the attempt as failed with the error's name, message and code, at the time it is given", () => {
    // Prepare
    const error = new PayloadTooLargeError("The task", 300, 200);
    // Act
    const outcome = failedAttempt(task([]), error, "2030-01-01T00:00:00.000Z");
    // Assess
    expect(outcome).toEqual({
      runId: "run_rules",
      stepId: "upload#0",
      attempt: 2,
      issueSeq: 7,
      recordedAt: "2030-01-01T00:00:00.000Z",
      ok: false,
      error: { name: "PayloadTooLargeError", message: error.message, code: "PAYLOAD_TOO_LARGE" },
    });
  });
});

describe("storableError", () => {
  const error = (message: string, stack?: string): SerializedError => ({
    name: "RetryableError",
    message,
    code: "RETRYABLE",
    retryAfterMs: 5_000,
    ...(stack === undefined ? {} : { stack }),
  });

  it("keeps an error within the limit as it is", () => {
    const small = error("timeout", "Error: timeout\n    at step");
    expect(storableError(small, 1_000)).toBe(small);
  });

  it("drops the stack first when that is enough, keeping the whole message", () => {
    const withStack = error("timeout", `Error: timeout\n${"    at frame\n".repeat(200)}`);
    expect(storableError(withStack, 1_000)).toEqual({
      name: "RetryableError",
      message: "timeout",
      code: "RETRYABLE",
      retryAfterMs: 5_000,
    });
  });

  it("cuts a message that is too large to fit, says so, and keeps the name, code and retry delay", () => {
    // Prepare
    const big = error(`HTTP 500: ${"é".repeat(5_000)}`, "stack");
    // Act
    const stored = storableError(big, 1_000);
    // Assess
    expect(bytesOf(stored)).toBeLessThanOrEqual(1_000);
    expect(stored).toMatchObject({ name: "RetryableError", code: "RETRYABLE", retryAfterMs: 5_000 });
    expect(stored.stack).toBeUndefined();
    expect(stored.message.startsWith("HTTP 500: éé")).toBe(true);
    expect(stored.message).toContain(`[cut from ${bytesOf(big)} bytes]`);
    expect(stored.message).not.toContain("\uFFFD");
  });

  it("fits a message made of characters that JSON escapes", () => {
    const escaped = error("\u0001".repeat(5_000));
    const stored = storableError(escaped, 1_000);
    expect(bytesOf(stored)).toBeLessThanOrEqual(1_000);
    expect(stored.message).toContain("[cut from ");
  });
});
