import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as cdkEntry from "../../infra/index.ts";

/** The settings `npx cdk synth` / `npx cdk deploy` read from the repository root. */

const cdkJson = JSON.parse(readFileSync(join(process.cwd(), "cdk.json"), "utf8"));

describe("cdk.json", () => {
  it("runs the examples app with tsx", () => {
    expect(cdkJson.app).toBe("npx tsx infra/app.ts");
  });

  it("keeps the CLI off the network: no notices, no version reporting, no telemetry", () => {
    expect(cdkJson.notices).toBe(false);
    expect(cdkJson.versionReporting).toBe(false);
    expect(cdkJson.context["cli-telemetry"]).toBe(false);
  });
});

describe("the tsworkflow/cdk entry", () => {
  it("exports the construct, its default handler names, its alias name and its bundling settings", () => {
    expect(Object.keys(cdkEntry).sort()).toEqual([
      "BUNDLING",
      "DEFAULT_HANDLER_NAMES",
      "DurableWorkflows",
      "LIVE_ALIAS",
    ]);
    expect(cdkEntry.LIVE_ALIAS).toBe("live");
    expect(cdkEntry.DEFAULT_HANDLER_NAMES).toEqual({
      workflow: "workflowHandler",
      step: "stepHandler",
      start: "startHandler",
      webhook: "webhookHandler",
      sweeper: "sweeperHandler",
      reaper: "reaperHandler",
    });
    expect(cdkEntry.BUNDLING).toMatchObject({
      forceDockerBundling: false,
      externalModules: ["@aws-sdk/*"],
      format: "esm",
      sourceMap: true,
    });
  });
});
