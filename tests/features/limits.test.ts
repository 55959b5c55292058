import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, EventLimitExceededError, step, workflow } from "tsworkflow";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterEach, describe, expect, it } from "vitest";

const tick = step("limits_tick", async (n: number) => n + 1);
const endless = workflow("limits_endless", async () => {
  let n = 0;
  for (;;) n = await tick(n);
});

describe("events per run", () => {
  let dir: string;
  afterEach(() => {
    configureLogging();
    rmSync(dir, { recursive: true, force: true });
  });

  it("warns when a run crosses the warning mark and fails it with EventLimitExceededError at the cap", async () => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), "tsw-limits-"));
    const logFile = join(dir, "log.jsonl");
    configureLogging({ level: "warning", logFile, jsonLogs: true });
    const runtime = new LocalRuntime({
      storage: new MemoryStorage(),
      limits: { warnEventsPerRun: 40, maxEventsPerRun: 100 },
    });

    // Act
    const { runId } = await runtime.start(endless, []);
    const run = await runtime.waitForRun(runId, { timeoutMs: 20_000 });
    const events = await runtime.getEvents(runId);
    await runtime.close();

    // Assess
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe(new EventLimitExceededError("r", 1).name);
    expect(run.error?.message).toContain("limit of 100 events");
    expect(events.length).toBeLessThanOrEqual(102);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const warnings = readFileSync(logFile, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { message: string; runId?: string })
      .filter((line) => line.message.includes("it fails when it reaches 100"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.runId).toBe(runId);
  });
});
