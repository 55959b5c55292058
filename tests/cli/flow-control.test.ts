import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging } from "tsworkflow";
import { FileStorage, LocalRuntime } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chargeOneAtATime, declined, hourly, oneAtATime } from "./fixtures/flow-workflows.ts";
import { runCli } from "./run-cli.ts";

const FLOW_WORKFLOWS = "tests/cli/fixtures/flow-workflows.ts";

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
    // Two failed runs of a limited workflow, then a run that holds their key's slot.
    declined.add("first-failed").add("second-failed");
    for (const label of ["first-failed", "second-failed", "holder"]) {
      runIds[label] = (await runtime.start(chargeOneAtATime, ["globex", label])).runId;
      await runtime.idle();
    }
    declined.clear();
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
    expect(row(runIds.throttled)).toContain("its start under rate limit run:cli_hourly (at most 1 per 1h)");
  });

  it("runs show gives a pending run's wait", async () => {
    // Act
    const result = await runCli(["runs", "show", runIds.queued ?? "", "--dir", dir]);
    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/waiting for\s+a run concurrency slot of key run:cli_one_at_a_time:acme/);
  });
});

describe("tsworkflow runs send-event to a run waiting for its concurrency slot", () => {
  it("leaves the run in line when it carries it on here with --workflows, while the holder keeps the slot", async () => {
    // Act
    const sent = await runCli([
      "runs",
      "send-event",
      runIds.queued ?? "",
      "go-acme",
      "--workflows",
      FLOW_WORKFLOWS,
      "--dir",
      dir,
    ]);
    const queued = await runCli(["runs", "show", runIds.queued ?? "", "--json", "--dir", dir]);
    const holder = await runCli(["runs", "show", runIds.holder ?? "", "--json", "--dir", dir]);
    // Assess
    expect(sent.code).toBe(0);
    expect(sent.stdout).toContain("is pending");
    expect(JSON.parse(queued.stdout)).toMatchObject({ status: "pending" });
    expect(JSON.parse(holder.stdout)).toMatchObject({ status: "suspended" });
  });
});

describe("tsworkflow runs retry of a run whose workflow has a concurrency limit", () => {
  const SLOT = "a run concurrency slot of key run:cli_charge_one_at_a_time:globex (at most 1 at once)";

  it("puts the run back in line when no app runs: pending, waiting for its slot (its start is not counted again)", async () => {
    // Act
    const retried = await runCli(["runs", "retry", runIds["first-failed"] ?? "", "--dir", dir]);
    const shown = await runCli(["runs", "show", runIds["first-failed"] ?? "", "--dir", dir]);

    // Assess
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain("is pending (it was failed)");
    expect(retried.stdout).toContain(
      `When your app next starts on ${dir}, it waits for ${SLOT}, then goes on from its failed step`,
    );
    expect(shown.stdout).toMatch(new RegExp(`waiting for\\s+${SLOT.replace(/[()]/g, "\\$&")}\\n`));
    expect(shown.stdout).not.toContain("its start under rate limit");
  });

  it("keeps the run pending behind the run that holds the slot when it carries it on here with --workflows", async () => {
    // Act
    const retried = await runCli([
      "runs",
      "retry",
      runIds["second-failed"] ?? "",
      "--workflows",
      FLOW_WORKFLOWS,
      "--dir",
      dir,
    ]);

    // Assess
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain("is pending (it was failed)");
    expect(retried.stdout).toContain(
      `It waits for ${SLOT}; your app carries it on when it next starts on ${dir}.`,
    );
  });

  it("lets the retried runs in, in the order they were retried, once the app runs and the holder ends", async () => {
    // Prepare: the app starts on the directory.
    configureLogging({ level: "silent" });
    const runtime = new LocalRuntime({ storage: new FileStorage({ dir }) });
    const statusOf = async (label: string) => (await runtime.getRun(runIds[label] ?? ""))?.status;
    try {
      await runtime.idle();
      expect([await statusOf("first-failed"), await statusOf("second-failed")]).toEqual([
        "pending",
        "pending",
      ]);

      // Act
      await runtime.sendEvent(runIds.holder ?? "", "go-globex", null);
      await runtime.waitForRun(runIds.holder ?? "", { timeoutMs: 10_000 });
      await runtime.idle();
      const afterHolder = [await statusOf("first-failed"), await statusOf("second-failed")];
      await runtime.sendEvent(runIds["first-failed"] ?? "", "go-globex", null);
      const first = await runtime.waitForRun(runIds["first-failed"] ?? "", { timeoutMs: 10_000 });
      await runtime.idle();
      await runtime.sendEvent(runIds["second-failed"] ?? "", "go-globex", null);
      const second = await runtime.waitForRun(runIds["second-failed"] ?? "", { timeoutMs: 10_000 });

      // Assess
      expect(afterHolder).toEqual(["suspended", "pending"]);
      expect([first.result, second.result]).toEqual(["charged first-failed", "charged second-failed"]);
    } finally {
      await runtime.close();
      configureLogging();
    }
  });
});
