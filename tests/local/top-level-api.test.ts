import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cancelRun,
  configure,
  configureLogging,
  getEvents,
  getRun,
  listRuns,
  sendEvent,
  shutdown,
  sleep,
  start,
  step,
  waitForEvent,
  waitForRun,
  workflow,
} from "tsworkflow";
import { FileStorage } from "tsworkflow/local";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { liveLock } from "../../lib/adapters/file/directory-lock.ts";

let dir: string;
const previousDir = process.env.TSWORKFLOW_DIR;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tsw-api-"));
  configureLogging({ level: "silent" });
});

afterEach(async () => {
  await shutdown();
  if (previousDir === undefined) delete process.env.TSWORKFLOW_DIR;
  else process.env.TSWORKFLOW_DIR = previousDir;
  rmSync(dir, { recursive: true, force: true });
});

const sendWelcome = step("api_send_welcome", async (userId: string) => `welcome sent to ${userId}`, {
  maxRetries: 5,
  retryDelay: "exponential",
});
const sendTips = step("api_send_tips", async (userId: string) => `tips sent to ${userId}`);
const onboarding = workflow("api_onboarding", async (userId: string) => {
  const welcome = await sendWelcome(userId);
  await sleep("50ms");
  const tips = await sendTips(userId);
  return { welcome, tips };
});

const napper = workflow("api_napper", async (userId: string) => {
  await sleep("1h");
  return userId;
});
const approval = workflow("api_approval", async (orderId: string) => {
  const decision = await waitForEvent<{ by: string }>("approved");
  await sleep("1h");
  return `${orderId} approved by ${decision.by}`;
});

describe("the top-level API on the default file backend", () => {
  it("completes a run with start and waitForRun in the directory named by TSWORKFLOW_DIR", async () => {
    // Prepare
    process.env.TSWORKFLOW_DIR = dir;
    // Act
    const runId = await start(onboarding, ["user_1"]);
    const run = await waitForRun(runId, { timeoutMs: 10_000 });
    // Assess
    expect(run).toMatchObject({
      runId,
      workflowName: "api_onboarding",
      status: "completed",
      input: ["user_1"],
      result: { welcome: "welcome sent to user_1", tips: "tips sent to user_1" },
    });
    expect(existsSync(join(dir, "runs", `${runId}.jsonl`))).toBe(true);
    expect((await getEvents(runId)).map((e) => e.type)).toEqual([
      "workflow_started",
      "step_started",
      "step_completed",
      "sleep_created",
      "workflow_suspended",
      "workflow_resumed",
      "sleep_completed",
      "step_started",
      "step_completed",
      "workflow_completed",
    ]);
  });

  it("completes a run with start and waitForRun in the directory given to configure", async () => {
    // Prepare
    configure({ dir });
    // Act
    const runId = await start(onboarding, ["user_2"], { idempotencyKey: "onboard-user_2" });
    const run = await waitForRun(runId, { timeoutMs: 10_000 });
    // Assess
    expect(run.status).toBe("completed");
    expect((await getRun(runId)).result).toEqual({
      welcome: "welcome sent to user_2",
      tips: "tips sent to user_2",
    });
    expect((await listRuns({ status: "completed" })).runs.map((r) => r.runId)).toEqual([runId]);
    expect(readdirSync(join(dir, "runs"))).toEqual([`${runId}.jsonl`]);
  });

  it("releases the directory on shutdown, so that a new runtime finds the finished run there", async () => {
    // Prepare
    configure({ dir });
    const runId = await start(onboarding, ["user_3"]);
    await waitForRun(runId, { timeoutMs: 10_000 });
    // Act
    await shutdown();
    const lockedAfterShutdown = liveLock(dir) !== undefined;
    configure({ dir });
    // Assess
    expect(lockedAfterShutdown).toBe(false);
    expect((await getRun(runId)).status).toBe("completed");
  });

  it("records a cancellation and an event asked for just before shutdown, instead of leaving them for the next start", async () => {
    // Prepare: two runs asleep for an hour; one waits for an event.
    configure({ dir });
    const napping = await start(napper, ["a"]);
    const waiting = await start(approval, ["b"]);
    await vi.waitFor(async () => {
      expect((await getRun(napping)).status).toBe("suspended");
      expect((await getRun(waiting)).status).toBe("suspended");
    });
    // Act
    await cancelRun(napping, "closing the account");
    await sendEvent(waiting, "approved", { by: "ada" });
    await shutdown();
    // Assess: another process reads what happened (no runtime here, so nothing goes on at reading).
    const reader = new FileStorage({ dir, readOnly: true });
    try {
      expect((await reader.getRun(napping))?.status).toBe("cancelled");
      expect((await reader.getEvents(napping)).map((event) => event.type)).toContain("cancel_requested");
      expect(await reader.getEvents(waiting)).toContainEqual(
        expect.objectContaining({ type: "hook_received", payload: { by: "ada" } }),
      );
    } finally {
      await reader.close();
    }
  });

  it("starts one run on the file backend for 50 concurrent starts with one key", async () => {
    // Prepare
    configure({ dir });
    // Act
    const ids = await Promise.all(
      Array.from({ length: 50 }, () => start(onboarding, ["user_5"], { idempotencyKey: "onboard-user_5" })),
    );
    // Assess
    expect(new Set(ids).size).toBe(1);
    expect(readdirSync(join(dir, "runs"))).toEqual([`${ids[0]}.jsonl`]);
    expect((await waitForRun(ids[0] as string, { timeoutMs: 10_000 })).status).toBe("completed");
  });
});
