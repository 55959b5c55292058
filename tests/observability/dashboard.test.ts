import { trace } from "@opentelemetry/api";
import { configureLogging, step, workflow } from "tsworkflow";
import { openTelemetry } from "tsworkflow/engine";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDashboard } from "../../lib/cli/dashboard/server.ts";
import { manualEngine } from "../core/support/manual-engine.ts";
import { type OpenTelemetryHarness, registerOpenTelemetry } from "./support/spans.ts";

let otel: OpenTelemetryHarness;
beforeAll(() => {
  configureLogging({ level: "silent" });
  otel = registerOpenTelemetry();
});
afterAll(async () => {
  configureLogging();
  await otel.shutdown();
});

const greet = step("otel_link_greet", async (name: string) => `hello ${name}`);
const hello = workflow("otel_link_hello", async (name: string) => greet(name));

describe("the dashboard's trace link", () => {
  it("links a run page to the run's trace with the --trace-url template, and shows no link without it", async () => {
    // Prepare: a run started inside a traced request.
    const m = manualEngine({ telemetry: openTelemetry });
    const { runId, traceId } = await trace.getTracer("app").startActiveSpan("request", async (span) => {
      const started = await m.engine.start(hello, ["ada"]);
      span.end();
      return { runId: started.runId, traceId: span.spanContext().traceId };
    });
    await m.runQueued();
    // Act
    const linked = await createDashboard({
      storage: m.store,
      traceUrl: "https://tracing.example/trace/{traceId}?from=tsworkflow",
    }).request(`/runs/${runId}`);
    const plain = await createDashboard({ storage: m.store }).request(`/runs/${runId}`);
    // Assess
    const page = await linked.text();
    expect(page).toContain(`href="https://tracing.example/trace/${traceId}?from=tsworkflow"`);
    expect(page).toContain("<dt>Trace</dt>");
    expect(await plain.text()).not.toContain("<dt>Trace</dt>");
  });
});

describe("the dashboard's tag filter", () => {
  it("lists only the runs that carry every tag of the filter, and keeps the filter on the page links", async () => {
    // Prepare
    const m = manualEngine({ telemetry: openTelemetry });
    const acme = await m.engine.start(hello, ["ada"], { tags: { tenant: "acme", plan: "pro" } });
    const acmeFree = await m.engine.start(hello, ["bob"], { tags: { tenant: "acme", plan: "free" } });
    const globex = await m.engine.start(hello, ["cy"], { tags: { tenant: "globex", plan: "pro" } });
    await m.runQueued();
    const dashboard = createDashboard({ storage: m.store });
    // Act
    const byTenant = await (await dashboard.request("/?tag=tenant%3Dacme")).text();
    const byBoth = await (
      await dashboard.request("/?tag=tenant%3Dacme%2Cplan%3Dpro&status=completed")
    ).text();
    // Assess
    expect(byTenant).toContain(acme.runId);
    expect(byTenant).toContain(acmeFree.runId);
    expect(byTenant).not.toContain(globex.runId);
    expect(byTenant).toContain('value="tenant=acme"');
    expect(byBoth).toContain(acme.runId);
    expect(byBoth).not.toContain(acmeFree.runId);
    expect(byBoth).not.toContain(globex.runId);
  });
});
