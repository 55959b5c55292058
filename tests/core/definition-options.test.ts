/**
 * A bad or unknown option of `step()` or `workflow()` is refused when the step or workflow is defined, with a
 * `ConfigurationError` that names the step or workflow, the option, what it may be and the value given.
 */
import { ConfigurationError, type StepOptions, step, type WorkflowOptions, workflow } from "tsworkflow";
import { Registry } from "tsworkflow/engine";
import { describe, expect, it } from "vitest";
import * as z from "zod/mini";

const DURATION = 'a duration such as "30s", "5m", "2h", { minutes: 1 } or milliseconds';
const STEP_OPTIONS = "maxRetries, retryDelay, maxRetryDelay, concurrency, rateLimit, inline";
const WORKFLOW_OPTIONS = "maxDuration, input, version, concurrency, rateLimit";

/** Options as a JavaScript caller or a computed object may give them: no compile-time check. */
const untyped = (options: Record<string, unknown>) => options as never;

/** Defines `name` with `options` in a registry of its own; what it throws, and what it registered. */
function define(kind: "step" | "workflow", name: string, options: unknown) {
  const registry = new Registry();
  let thrown: unknown;
  try {
    registry.define(() =>
      kind === "step"
        ? step(name, async () => 1, options as never)
        : workflow(name, async () => 1, options as never),
    );
  } catch (error) {
    thrown = error;
  }
  return { thrown, registered: kind === "step" ? registry.findStep(name) : registry.findWorkflow(name) };
}

describe("options of step() and workflow()", () => {
  it.each<[string, "step" | "workflow", unknown, string]>([
    [
      "a maxDuration that is no duration",
      "workflow",
      { maxDuration: "5 minutes" },
      `workflow("opt"): maxDuration must be ${DURATION}, got "5 minutes".`,
    ],
    [
      "a maxDuration in a unit that does not exist",
      "workflow",
      { maxDuration: { hour: 1 } },
      `workflow("opt"): maxDuration must be ${DURATION}, got {"hour":1} (unknown unit "hour").`,
    ],
    [
      "a maxDuration given as a Date",
      "workflow",
      { maxDuration: new Date("2030-01-01T00:00:00Z") },
      `workflow("opt"): maxDuration must be ${DURATION}, got Date(2030-01-01T00:00:00.000Z) (a Date is a point in time, not a length).`,
    ],
    [
      "a retryDelay policy that does not exist",
      "step",
      { retryDelay: "linear" },
      `step("opt"): retryDelay must be "fixed", "exponential" or ${DURATION}, got "linear".`,
    ],
    [
      "a negative retryDelay",
      "step",
      { retryDelay: -5 },
      `step("opt"): retryDelay must be "fixed", "exponential" or ${DURATION}, got -5 (expected a finite number of milliseconds >= 0).`,
    ],
    [
      "a maxRetryDelay that is no duration",
      "step",
      { maxRetryDelay: "10 mins" },
      `step("opt"): maxRetryDelay must be ${DURATION}, got "10 mins".`,
    ],
    [
      "a maxRetries below 0",
      "step",
      { maxRetries: -1 },
      'step("opt"): maxRetries must be an integer >= 0, got -1.',
    ],
    [
      "a step's rateLimit without a period",
      "step",
      { rateLimit: { limit: 10 } },
      `step("opt"): rateLimit.period must be ${DURATION}, got undefined.`,
    ],
    [
      "a workflow's rateLimit without a period",
      "workflow",
      { rateLimit: { limit: 10 } },
      `workflow("opt"): rateLimit.period must be ${DURATION}, got undefined.`,
    ],
    [
      "a rateLimit period of 0",
      "step",
      { rateLimit: { limit: 10, period: 0 } },
      'step("opt"): rateLimit.period must be longer than 0, got 0.',
    ],
    [
      "a concurrency that is a number",
      "step",
      { concurrency: 5 },
      'step("opt"): concurrency must be an object, got 5.',
    ],
    [
      "a concurrency limit of 0",
      "workflow",
      { concurrency: { limit: 0 } },
      'workflow("opt"): concurrency.limit must be an integer >= 1, got 0.',
    ],
    [
      "a concurrency key that is no function",
      "workflow",
      { concurrency: { limit: 1, key: "tenant" } },
      'workflow("opt"): concurrency.key must be a function, got "tenant".',
    ],
    [
      "an input that is no zod schema",
      "workflow",
      { input: { name: "string" } },
      'workflow("opt"): input must be a zod schema, got {"name":"string"}.',
    ],
    [
      "a version with a space",
      "workflow",
      { version: "1 beta" },
      'workflow("opt"): version must be 1 to 64 letters, digits, ".", "_" or "-", got "1 beta".',
    ],
    ["options that are no object", "step", null, 'step("opt"): options must be an object, got null.'],
  ])(
    "refuses %s with a ConfigurationError naming the owner and the option",
    (_case, kind, options, message) => {
      // Act
      const { thrown, registered } = define(kind, "opt", options);

      // Assess
      expect(thrown).toBeInstanceOf(ConfigurationError);
      expect(thrown).toMatchObject({ name: "ConfigurationError", code: "CONFIGURATION", message });
      expect(registered).toBeUndefined();
    },
  );

  it.each<[string, "step" | "workflow", Record<string, unknown>, string]>([
    [
      "a misspelt step option, listing the known ones",
      "step",
      { retires: 3 },
      `step("opt"): unknown option "retires". The options are ${STEP_OPTIONS}.`,
    ],
    [
      "a step option that steps do not have",
      "step",
      { maxRetries: 3, timeout: "5m" },
      `step("opt"): unknown option "timeout". The options are ${STEP_OPTIONS}.`,
    ],
    [
      "a workflow option that workflows do not have",
      "workflow",
      { timeout: "5m" },
      `workflow("opt"): unknown option "timeout". The options are ${WORKFLOW_OPTIONS}.`,
    ],
    [
      "a misspelt workflow option, listing the known ones",
      "workflow",
      { maxDurration: "1d" },
      `workflow("opt"): unknown option "maxDurration". The options are ${WORKFLOW_OPTIONS}.`,
    ],
    [
      "a workflow option in the wrong case",
      "workflow",
      { ratelimit: { limit: 1, period: "1s" } },
      `workflow("opt"): unknown option "ratelimit". The options are ${WORKFLOW_OPTIONS}.`,
    ],
    [
      "a misspelt option of a limit, which would have made one limit for all keys",
      "step",
      { concurrency: { limit: 2, keys: (tenant: string) => tenant } },
      'step("opt"): unknown option "concurrency.keys". The options are concurrency.limit, concurrency.key.',
    ],
    [
      "a misspelt option of a rate limit",
      "workflow",
      { rateLimit: { limit: 2, per: "1m" } },
      'workflow("opt"): unknown option "rateLimit.per". The options are rateLimit.limit, rateLimit.period, rateLimit.key.',
    ],
  ])("refuses %s, listing the known ones", (_case, kind, options, message) => {
    // Act
    const { thrown, registered } = define(kind, "opt", untyped(options));

    // Assess
    expect(thrown).toBeInstanceOf(ConfigurationError);
    expect(thrown).toMatchObject({ code: "CONFIGURATION", message });
    expect(registered).toBeUndefined();
  });

  it("refuses an unknown option of an options object built at run time, which TypeScript lets through", () => {
    // Prepare: a spread of a wider object type-checks; a literal with the same key does not.
    const shared = { maxRetries: 2, timeout: "5m" };
    const options: StepOptions = { ...shared };
    // @ts-expect-error: steps have no timeout option
    const literal: StepOptions = { timeout: "5m" };
    // @ts-expect-error: the option is maxDuration
    const workflowLiteral: WorkflowOptions = { maxDurration: "1d" };

    // Act
    const act = () => new Registry().define(() => step("opt_computed", async () => 1, options));

    // Assess
    expect(act).toThrow(`step("opt_computed"): unknown option "timeout". The options are ${STEP_OPTIONS}.`);
    expect([literal, workflowLiteral]).toHaveLength(2);
  });

  it("accepts every option with a valid value", () => {
    // Act
    const registry = new Registry();
    registry.define(() => {
      step("opt_all", async (tenant: string) => tenant, {
        maxRetries: 0,
        retryDelay: "exponential",
        maxRetryDelay: { minutes: 5 },
        concurrency: { limit: 2, key: (tenant) => tenant },
        rateLimit: { limit: 10, period: "1m", key: (tenant) => tenant },
        inline: false,
      });
      workflow("opt_all", async (tenant: string) => tenant, {
        maxDuration: "30d",
        input: z.string(),
        version: "2",
        concurrency: { limit: 1 },
        rateLimit: { limit: 5, period: 60_000 },
      });
    });

    // Assess
    expect(registry.findStep("opt_all")?.options).toMatchObject({
      maxRetries: 0,
      retryDelay: "exponential",
      maxRetryDelayMs: 300_000,
      concurrency: { limit: 2 },
      rateLimit: { limit: 10, periodMs: 60_000 },
      inline: false,
    });
    expect(registry.findWorkflow("opt_all")).toMatchObject({ version: "2", maxDurationMs: 2_592_000_000 });
  });
});
