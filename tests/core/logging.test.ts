import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigurationError, configureLogging, log, step, workflow } from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";

let dir: string;
let fileCount = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tsw-logging-"));
});

afterEach(() => {
  // Closes the current log file.
  configureLogging({ level: "silent" });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const newLogFile = () => {
  fileCount += 1;
  return join(dir, `run-${fileCount}.log`);
};

let failuresLeft = 0;
const flaky = step(
  "logging_flaky",
  async (orderId: string) => {
    if (failuresLeft > 0) {
      failuresLeft -= 1;
      throw new Error("gateway timeout");
    }
    log.info("charged inside the step", { orderId });
    return `charged ${orderId}`;
  },
  { retryDelay: "1s" },
);
const ordering = workflow("logging_order", async (orderId: string) => {
  log.info("processing order", { orderId });
  const charged = await flaky(orderId);
  log.warning("order charged", { charged });
  return charged;
});

/** Waits until the file has a line containing `text`, then returns all its lines. */
async function linesOnceWritten(file: string, text: string): Promise<string[]> {
  await vi.waitFor(
    () => {
      if (!existsSync(file) || !readFileSync(file, "utf8").includes(text))
        throw new Error(`no "${text}" yet`);
    },
    { timeout: 5_000, interval: 10 },
  );
  return readFileSync(file, "utf8").split("\n").filter(Boolean);
}

const parsed = (lines: string[]) => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

describe("configureLogging", () => {
  it("writes JSON lines with the run's context to the log file", async () => {
    // Prepare
    const logFile = newLogFile();
    configureLogging({ level: "debug", logFile, jsonLogs: true, showContext: true });
    failuresLeft = 1;
    // Act
    const runId = await startLocal(ordering, ["o-1"], { storage: new MemoryStorage(), timeSkipping: true });
    // Assess
    const lines = parsed(await linesOnceWritten(logFile, "order charged"));
    const processing = lines.find((line) => line.message === "processing order");
    expect(processing).toMatchObject({
      level: "INFO",
      runId,
      workflowName: "logging_order",
      data: { orderId: "o-1" },
    });
    expect(lines.find((line) => line.message === "order charged")).toMatchObject({
      level: "WARN",
      runId,
      workflowName: "logging_order",
    });
    const stepLine = lines.find((line) => line.stepId === "logging_flaky#0");
    expect(stepLine).toMatchObject({
      level: "DEBUG",
      runId,
      stepId: "logging_flaky#0",
      stepName: "logging_flaky",
    });
  });

  it("adds the step's context to log calls made inside a step", async () => {
    // Prepare
    const logFile = newLogFile();
    configureLogging({ level: "info", logFile, jsonLogs: true, showContext: true });
    failuresLeft = 0;
    // Act
    const runId = await startLocal(ordering, ["o-2"], { storage: new MemoryStorage() });
    // Assess
    const lines = parsed(await linesOnceWritten(logFile, "charged inside the step"));
    expect(lines.find((line) => line.message === "charged inside the step")).toMatchObject({
      runId,
      workflowName: "logging_order",
      stepId: "logging_flaky#0",
      stepName: "logging_flaky",
      data: { orderId: "o-2" },
    });
  });

  it("leaves the run's context out with showContext: false", async () => {
    // Prepare
    const logFile = newLogFile();
    configureLogging({ level: "debug", logFile, jsonLogs: true, showContext: false });
    failuresLeft = 1;
    // Act
    await startLocal(ordering, ["o-3"], { storage: new MemoryStorage(), timeSkipping: true });
    // Assess
    const lines = parsed(await linesOnceWritten(logFile, "order charged"));
    expect(lines.find((line) => line.message === "processing order")).toMatchObject({
      data: { orderId: "o-3" },
    });
    for (const line of lines) {
      for (const key of ["runId", "workflowName", "stepId", "stepName"]) expect(line).not.toHaveProperty(key);
    }
  });

  it("writes text lines with jsonLogs: false", async () => {
    // Prepare
    const logFile = newLogFile();
    configureLogging({ level: "info", logFile, jsonLogs: false, showContext: true });
    failuresLeft = 0;
    // Act
    const runId = await startLocal(ordering, ["o-4"], { storage: new MemoryStorage() });
    // Assess
    const lines = await linesOnceWritten(logFile, "order charged");
    const processing = lines.find((line) => line.includes("processing order"));
    expect(processing).toMatch(/^\d{4}-\d{2}-\d{2}T\S+ INFO +processing order /);
    expect(processing).toContain(`runId=${runId}`);
    expect(processing).toContain("workflowName=logging_order");
    expect(processing).toContain('data={"orderId":"o-4"}');
    for (const line of lines) expect(() => JSON.parse(line)).toThrow();
  });

  it("leaves out messages below the configured level", async () => {
    // Prepare
    const logFile = newLogFile();
    configureLogging({ level: "warning", logFile, jsonLogs: true });
    failuresLeft = 0;
    // Act
    await startLocal(ordering, ["o-5"], { storage: new MemoryStorage() });
    // Assess
    const lines = parsed(await linesOnceWritten(logFile, "order charged"));
    expect(lines.map((line) => line.message)).toContain("order charged");
    expect(lines.map((line) => line.message)).not.toContain("processing order");
    expect(lines.filter((line) => line.level === "INFO" || line.level === "DEBUG")).toEqual([]);
  });

  it("takes warn for warning, as LOG_LEVEL does, and refuses an unknown level with a ConfigurationError", async () => {
    // Prepare
    const logFile = newLogFile();
    // Act: as JavaScript callers may write them (no types to stop them).
    configureLogging({ level: "warn" as "warning", logFile, jsonLogs: true });
    await startLocal(ordering, ["o-6"], { storage: new MemoryStorage() });
    const unknown = () => configureLogging({ level: "loud" as "warning" });
    // Assess
    const lines = parsed(await linesOnceWritten(logFile, "order charged"));
    expect(lines.map((line) => line.message)).not.toContain("processing order");
    expect(unknown).toThrow(ConfigurationError);
    expect(unknown).toThrow('Unknown log level "loud": use debug, info, warning, error or silent.');
  });
});
