import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, InvalidTagError, setTags, step, workflow } from "tsworkflow";
import { FileStorage, MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../cli/run-cli.ts";
import { manualEngine } from "./support/manual-engine.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

let planLookups = 0;
const lookUpPlan = step("tags_look_up_plan", async (userId: string) => {
  planLookups += 1;
  return userId.startsWith("vip") ? "pro" : "free";
});
const onboarding = workflow("tags_onboarding", async (userId: string) => {
  setTags({ stage: "started" });
  const plan = await lookUpPlan(userId);
  setTags({ plan, stage: "done" });
  return plan;
});
const badTag = workflow("tags_bad", async () => {
  setTags({ "not a key": "x" });
});

describe("run tags", () => {
  it("keeps the tags of start() and of each setTags(), recorded once however often the run replays", async () => {
    // Prepare: every activation replays the run from its log.
    const m = manualEngine({ cacheSize: 0 });
    planLookups = 0;
    // Act
    const { runId } = await m.engine.start(onboarding, ["vip_1"], { tags: { tenant: "acme" } });
    await m.runQueued();
    // Assess
    const run = await m.run(runId);
    expect(run.status).toBe("completed");
    expect(run.tags).toEqual({ tenant: "acme", stage: "done", plan: "pro" });
    const events = await m.events(runId);
    expect(events[0]).toMatchObject({ type: "workflow_started", tags: { tenant: "acme" } });
    expect(events.filter((event) => event.type === "tags_set").map((event) => event.tags)).toEqual([
      { stage: "started" },
      { plan: "pro", stage: "done" },
    ]);
    expect(planLookups).toBe(1);
    const page = await m.store.listRuns({ tags: { tenant: "acme", plan: "pro" } });
    expect(page.runs.map((listed) => listed.runId)).toEqual([runId]);
  });

  it.each([
    ["a key with a space", { "tenant id": "acme" }, /Invalid tag key "tenant id"/],
    ["an empty value", { tenant: "" }, /Invalid value "" of tag "tenant"/],
    ["a value with a newline", { tenant: "a\nb" }, /no control characters/],
    ["a value that is not a string", { tenant: 42 }, /Invalid value 42 of tag "tenant"/],
    ["17 tags", Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])), /at most 16/],
  ])("refuses %s at start with an InvalidTagError, storing nothing", async (_what, tags, message) => {
    // Prepare
    const storage = new MemoryStorage();
    // Act
    const started = startLocal(onboarding, ["u"], { storage, tags: tags as Record<string, string> });
    // Assess
    await expect(started).rejects.toThrow(InvalidTagError);
    await expect(started).rejects.toThrow(message);
    expect((await storage.listRuns()).runs).toEqual([]);
  });

  it("fails a run whose workflow sets an invalid tag, naming the rule", async () => {
    // Act
    const storage = new MemoryStorage();
    const runId = await startLocal(badTag, [], { storage });
    // Assess
    const run = await storage.getRun(runId);
    expect(run?.status).toBe("failed");
    expect(run?.error).toMatchObject({ name: "InvalidTagError", code: "INVALID_TAG" });
  });

  it("lists the runs of a tag with `runs list --tag`, and shows a run's tags", async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), "tsw-tags-"));
    try {
      const storage = new FileStorage({ dir });
      const acme = await startLocal(onboarding, ["vip_2"], { storage, tags: { tenant: "acme" } });
      await startLocal(onboarding, ["u_3"], { storage, tags: { tenant: "globex" } });
      await storage.close();
      // Act
      const listed = await runCli([
        "runs",
        "list",
        "--dir",
        dir,
        "--tag",
        "tenant=acme",
        "--tag",
        "plan=pro",
      ]);
      const shown = await runCli(["runs", "show", acme, "--dir", dir]);
      const bad = await runCli(["runs", "list", "--dir", dir, "--tag", "tenant"]);
      // Assess
      expect(listed.code).toBe(0);
      const rows = listed.stdout.trim().split("\n").slice(1);
      expect(rows.map((row) => row.split(/\s+/)[0])).toEqual([acme]);
      expect(shown.stdout).toMatch(/tags\s+tenant=acme stage=done plan=pro/);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("--tag takes key=value");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
