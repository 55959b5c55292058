import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runChild, sleep, step, waitForEvent, workflow } from "tsworkflow";
import { FileStorage, LocalRuntime } from "tsworkflow/local";
import { afterEach, describe, expect, it } from "vitest";

const goodbyes: string[] = [];
const goodbye = step("fb_goodbye", async (userId: string) => {
  goodbyes.push(userId);
  return "bye";
});
const subscription = workflow("fb_subscription", async (userId: string) => {
  try {
    await sleep("30d");
  } finally {
    await goodbye(userId);
  }
});
const approval = workflow("fb_approval", async () => (await waitForEvent<{ ok: boolean }>("decision")).ok);
const square = workflow("fb_square", async (n: number) => n * n);
const sumOfSquares = workflow("fb_sum_of_squares", async (numbers: number[]) => {
  const squares = await Promise.all(numbers.map((n) => runChild(square, [n])));
  return squares.reduce((a, b) => a + b, 0);
});

describe("events, cancellation and child runs on the file backend, across restarts", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const open = () => new LocalRuntime({ storage: new FileStorage({ dir }) });

  it("delivers an event to a run that a previous process left waiting", async () => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), "tsw-features-"));
    const first = open();
    const { runId } = await first.start(approval, []);
    await first.idle();
    expect((await first.getRun(runId))?.status).toBe("suspended");
    await first.close();

    // Act
    const second = open();
    await second.sendEvent(runId, "decision", { ok: true });
    const run = await second.waitForRun(runId, { timeoutMs: 10_000 });
    await second.close();

    // Assess
    expect(run).toMatchObject({ status: "completed", result: true });
  });

  it("cancels a run that a previous process left sleeping, running its cleanup step", async () => {
    dir = mkdtempSync(join(tmpdir(), "tsw-features-"));
    const first = open();
    const { runId } = await first.start(subscription, ["ada"]);
    await first.idle();
    await first.close();

    const second = open();
    await second.cancelRun(runId, "account closed");
    const run = await second.waitForRun(runId, { timeoutMs: 10_000 });
    const types = (await second.getEvents(runId)).map((event) => event.type);
    await second.close();

    expect(run.status).toBe("cancelled");
    expect(goodbyes).toEqual(["ada"]);
    expect(types.slice(-4)).toEqual([
      "cancel_requested",
      "step_started",
      "step_completed",
      "workflow_cancelled",
    ]);
  });

  it("runs child workflows, each in a run file of its own", async () => {
    dir = mkdtempSync(join(tmpdir(), "tsw-features-"));
    const runtime = open();
    const { runId } = await runtime.start(sumOfSquares, [[1, 2, 3]]);
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    const children = (await runtime.listRuns({ workflowName: "fb_square" })).runs.map(
      (child) => child.status,
    );
    await runtime.close();

    expect(run).toMatchObject({ status: "completed", result: 14 });
    expect(children).toEqual(["completed", "completed", "completed"]);
  });
});
