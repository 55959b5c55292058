import { configureLogging, RetryableError, step, workflow } from "tsworkflow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDashboard } from "../../lib/cli/dashboard/server.ts";
import { buildTimeline } from "../../lib/cli/timeline.ts";
import { type ManualEngine, manualEngine } from "../core/support/manual-engine.ts";

/** The measured timing of step attempts: in the log, on the CLI and dashboard timelines. */

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

let m: ManualEngine;
let calls = 0;
/** Takes 250 ms on the manual clock; the first attempt fails. */
const slow = step(
  "timing_slow",
  async () => {
    calls += 1;
    m.clock.advanceTo(m.clock.now() + 250);
    if (calls === 1) throw new RetryableError("first attempt fails", { retryAfter: "1s" });
    return "done";
  },
  { maxRetries: 2 },
);
const timed = workflow("timing_flow", async () => slow());

describe("step attempt timing", () => {
  it("records when each attempt started and how long it ran, and the dashboard shows ran and waited", async () => {
    // Prepare
    m = manualEngine();
    calls = 0;
    const { runId } = await m.engine.start(timed, []);
    // Act: the first task waits 40 ms in the queue, the retry 15 ms after its timer fires.
    await m.engine.activate(m.queue.takeActivations()[0] as never);
    m.clock.advanceTo(m.clock.now() + 40);
    await m.runQueued();
    const retry = m.timers.takeEarliest();
    m.clock.advanceTo(retry?.fireAt ?? 0);
    await m.engine.activate(retry?.task as never);
    m.clock.advanceTo(m.clock.now() + 15);
    await m.runQueued();
    const events = await m.events(runId);
    const run = await m.run(runId);
    const page = await (await createDashboard({ storage: m.store }).request(`/runs/${runId}`)).text();
    // Assess
    expect(run.status).toBe("completed");
    const ends = events.filter((event) => event.type === "step_retrying" || event.type === "step_completed");
    expect(ends.map((event) => "durationMs" in event && event.durationMs)).toEqual([250, 250]);
    const started = events.filter((event) => event.type === "step_started");
    expect(
      ends.map((event, index) =>
        "startedAt" in event ? (event.startedAt as number) - Date.parse(started[index]?.timestamp ?? "") : -1,
      ),
    ).toEqual([40, 15]);
    const [row] = buildTimeline(run, events, m.clock.now()).rows;
    expect(row).toMatchObject({ ranMs: 500, waitMs: 55 });
    expect(row?.segments.filter((segment) => segment.ranMs !== undefined).map((s) => s.waitMs)).toEqual([
      40, 15,
    ]);
    expect(page).toContain('data-ran-ms="500" data-wait-ms="55"');
    expect(page).toContain("ran 500ms · started after 55ms");
    expect(page).toContain("ran 250ms, started 40ms after it was sent");
  });
});
