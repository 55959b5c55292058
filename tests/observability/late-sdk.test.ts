import { trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { configureLogging, step, workflow } from "tsworkflow";
import { openTelemetry } from "tsworkflow/engine";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualEngine } from "../core/support/manual-engine.ts";
import { spanTree } from "./support/spans.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => {
  configureLogging();
  trace.disable();
});

const add = step("late_sdk_add", async (n: number) => n + 1);
const twice = workflow("late_sdk_twice", async () => (await add(0)) + (await add(1)));

describe("OpenTelemetry registered after the engine", () => {
  it("traces the activations and step attempts of a run started before a tracer provider was registered", async () => {
    // Prepare: the engine loads the API while no SDK is registered (it then skips the API's no-op spans).
    const m = manualEngine({ telemetry: openTelemetry });
    const { runId } = await m.engine.start(twice, []);
    const spans = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    );
    // Act
    await m.runToEnd();
    // Assess
    expect((await m.run(runId)).status).toBe("completed");
    const tree = spanTree(spans.getFinishedSpans());
    // The run was started untraced: its activations are root spans, each with the step attempt it sent,
    // and the run's own span at its end.
    expect(tree).toEqual([
      "(root) > activate late_sdk_twice",
      "(root) > activate late_sdk_twice",
      "(root) > activate late_sdk_twice",
      "(root) > run late_sdk_twice",
      "activate late_sdk_twice > step late_sdk_add",
      "activate late_sdk_twice > step late_sdk_add",
    ]);
  });
});
