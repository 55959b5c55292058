import { configureLogging, runChild, waitForEvent, workflow } from "tsworkflow";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { buildTimeline } from "../../lib/cli/timeline.ts";

/** The timeline's rows for waits (hooks), as `runs show` and the dashboard show them. */

const approval = z.object({ ok: z.boolean() });
const twoApprovals = workflow("tl_two_approvals", async () => {
  const note = await waitForEvent<string>("note");
  const first = await waitForEvent("approval", { schema: approval });
  const second = await waitForEvent("approval", { schema: approval });
  return { note, first, second };
});
const approvedChild = workflow("tl_approved_child", async () =>
  waitForEvent("approval", { schema: approval }),
);
const parent = workflow("tl_parent", async () => {
  await waitForEvent("approval", { schema: approval });
  return runChild(approvedChild, []);
});

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

let runtime: LocalRuntime;
afterEach(() => runtime.close());

/** The rows of a run's timeline once it has finished, by id: status, error, and the kinds of its bars. */
async function rowsOf(runId: string) {
  const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
  const timeline = buildTimeline(run, await runtime.getEvents(runId), Date.now());
  return Object.fromEntries(
    timeline.rows.map((row) => [
      row.id,
      {
        status: row.status,
        error: row.error?.message,
        bars: row.segments.map((segment) => [segment.kind, segment.error?.name]),
      },
    ]),
  );
}

describe("the timeline of a wait for an event", () => {
  it("shows the wait whose payload failed its schema as failed, with the schema's error, and the waits before it as received", async () => {
    // Prepare
    runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const { runId } = await runtime.start(twoApprovals, []);
    await runtime.idle();

    // Act
    await runtime.sendEvent(runId, "note", "hello");
    await runtime.sendEvent(runId, "approval", { ok: true });
    await runtime.sendEvent(runId, "approval", { ok: "yes" });

    // Assess
    const schemaError =
      'The payload of event "approval" does not match its schema: ok: Invalid input: expected boolean, received string.';
    expect(await rowsOf(runId)).toEqual({
      "note#0": { status: "completed", error: undefined, bars: [["received", undefined]] },
      "approval#0": { status: "completed", error: undefined, bars: [["received", undefined]] },
      "approval#1": { status: "failed", error: schemaError, bars: [["failed", "EventPayloadError"]] },
    });
  });

  it("leaves a parent's wait received when the run failed with a child run's payload error for an event of that name", async () => {
    // Prepare
    runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const { runId } = await runtime.start(parent, []);
    await runtime.idle();
    await runtime.sendEvent(runId, "approval", { ok: true });
    await runtime.idle();
    const child = (await runtime.getEvents(runId)).find((event) => event.type === "child_started");
    const childRunId = child?.type === "child_started" ? child.childRunId : "none";

    // Act
    await runtime.sendEvent(childRunId, "approval", { ok: "yes" });

    // Assess
    const rows = await rowsOf(runId);
    expect(rows["approval#0"]).toMatchObject({ status: "completed", bars: [["received", undefined]] });
    expect(Object.values(rows).map((row) => row.status)).toEqual(["completed", "failed"]);
    expect((await rowsOf(childRunId))["approval#0"]).toMatchObject({ status: "failed" });
  });
});
