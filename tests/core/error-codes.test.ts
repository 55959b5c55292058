import * as core from "tsworkflow";
import { TsWorkflowError } from "tsworkflow";
import * as aws from "tsworkflow/aws";
import * as cli from "tsworkflow/cli";
import { deserializeError } from "tsworkflow/engine";
import * as local from "tsworkflow/local";
import { describe, expect, it } from "vitest";
import { serializeError } from "../../lib/core/serialization.ts";

type ErrorClass = new (...args: unknown[]) => TsWorkflowError;

/** Every error class the public entry points export. */
const classes = new Map<string, ErrorClass>();
for (const entry of [core, local, aws, cli] as Record<string, unknown>[]) {
  for (const [name, value] of Object.entries(entry)) {
    if (typeof value === "function" && value.prototype instanceof TsWorkflowError)
      classes.set(name, value as ErrorClass);
  }
}

/** An instance built with placeholder arguments (every constructor takes strings, arrays or numbers). */
const instanceOf = (Class: ErrorClass) => new Class("x", [], 1);

/** Errors a runtime throws and no run records: rebuilt as `Error`s (their classes stay out of Lambda bundles). */
const NEVER_RECORDED = new Set([
  "StorageLockedError",
  "StorageClosedError",
  "StorageWriteError",
  "RunFileDamagedError",
  "RuntimeClosedError",
  "UnsupportedScheduleError",
]);

describe("error classes", () => {
  it("are exported from the public entry points, at least the ones this test knows", () => {
    // Assess
    for (const name of ["FatalError", "InvalidMessageError", "DuplicateNameError", "UsageError"])
      expect(classes.has(name)).toBe(true);
  });

  it("each have a literal name equal to the class name", () => {
    for (const [name, Class] of classes) expect(instanceOf(Class).name).toBe(name);
  });

  it("each have a code no other class uses", () => {
    // Act
    const byCode = new Map<string, string[]>();
    for (const [name, Class] of classes) {
      const code = instanceOf(Class).code;
      byCode.set(code, [...(byCode.get(code) ?? []), name]);
    }
    // Assess
    const shared = [...byCode].filter(([, names]) => names.length > 1);
    expect(shared).toEqual([]);
  });

  it("that no run records (thrown by runtimes) come back with their name and code", () => {
    for (const name of NEVER_RECORDED) {
      const original = instanceOf((core as unknown as Record<string, ErrorClass>)[name] as ErrorClass);
      expect(deserializeError(serializeError(original))).toMatchObject({
        name,
        message: original.message,
        code: original.code,
      });
    }
  });

  it("of the core entry come back from the log as the same class, with name, message and code", () => {
    for (const [name, value] of Object.entries(core)) {
      // Prepare
      if (typeof value !== "function" || !(value.prototype instanceof TsWorkflowError)) continue;
      if (NEVER_RECORDED.has(name)) continue;
      const original = instanceOf(value as ErrorClass);
      // Act
      const back = deserializeError(serializeError(original));
      // Assess
      expect(back, name).toBeInstanceOf(value);
      expect(back).toMatchObject({ name, message: original.message, code: original.code });
    }
  });
});
