import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, waitForEvent, workflow } from "tsworkflow";
import { LocalRuntime } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./run-cli.ts";

const oneAtATime = workflow("cli_one_at_a_time", async (customer: string) => waitForEvent(`go-${customer}`), {
  concurrency: { limit: 1, key: (customer) => customer },
});
const hourly = workflow("cli_hourly", async (label: string) => label, {
  rateLimit: { limit: 1, period: "1h" },
});

let dir: string;
const runIds: Record<string, string> = {};

beforeAll(async () => {
  configureLogging({ level: "silent" });
  dir = mkdtempSync(join(tmpdir(), "tsw-cli-flow-"));
  const runtime = new LocalRuntime({ dir });
  try {
    runIds.holder = (await runtime.start(oneAtATime, ["acme"])).runId;
    await runtime.idle();
    runIds.queued = (await runtime.start(oneAtATime, ["acme"])).runId;
    runIds.first = (await runtime.start(hourly, ["first"])).runId;
    await runtime.idle();
    runIds.throttled = (await runtime.start(hourly, ["second"])).runId;
    await runtime.idle();
  } finally {
    await runtime.close();
    configureLogging();
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("tsworkflow runs and flow control", () => {
  it("runs list --status pending says which limit each pending run waits for", async () => {
    // Act
    const result = await runCli(["runs", "list", "--status", "pending", "--dir", dir]);
    // Assess
    expect(result.code).toBe(0);
    const [header, ...rows] = result.stdout.trim().split("\n");
    expect(header).toMatch(/DURATION\s+WAITING FOR$/);
    expect(rows).toHaveLength(2);
    const row = (runId: string | undefined) => rows.find((line) => line.startsWith(runId ?? "?")) ?? "";
    expect(row(runIds.queued)).toContain(
      "a run concurrency slot of key run:cli_one_at_a_time:acme (at most 1 at once)",
    );
    expect(row(runIds.throttled)).toContain("its start under rate limit run:cli_hourly: (at most 1 per 1h)");
  });

  it("runs show gives a pending run's wait", async () => {
    // Act
    const result = await runCli(["runs", "show", runIds.queued ?? "", "--dir", dir]);
    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/waiting for\s+a run concurrency slot of key run:cli_one_at_a_time:acme/);
  });
});
