/**
 * An activation reads the run's document, then its log. Another worker may commit in between, so the
 * document can say less than the log: the log decides whether the run is suspended, so a run is never
 * suspended or resumed twice in a row.
 */
import { configureLogging, sleep, step, waitForEvent, workflow } from "tsworkflow";
import type { RunRecord } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualEngine, types } from "./support/manual-engine.ts";

const fetchReport = step("stale_doc_fetch", async () => "report", { inline: false });
const napThenFetch = workflow("stale_doc_nap_then_fetch", async () => {
  await sleep("1m");
  return fetchReport();
});

const fetchThenWait = workflow("stale_doc_fetch_then_wait", async () => {
  const report = await fetchReport();
  await waitForEvent("approved");
  return report;
});

/** A memory store whose `getRun` answers with a document the test froze, while the log moves on. */
class LaggingDocument extends MemoryStorage {
  frozen: RunRecord | undefined;
  override async getRun(runId: string): Promise<RunRecord | undefined> {
    return this.frozen ?? super.getRun(runId);
  }
}

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

describe("a document that lags the log", () => {
  it("resumes a run once when the document still says suspended but the log has resumed it", async () => {
    // Prepare: the run asleep (document frozen there), then woken by the timer: its step sent.
    const store = new LaggingDocument();
    const m = manualEngine({ store, cacheSize: 0 });
    const { runId } = await m.engine.start(napThenFetch, []);
    await m.runQueued();
    store.frozen = await m.run(runId);
    const timer = m.timers.takeEarliest();
    if (!timer) throw new Error("no timer");
    m.clock.advanceTo(timer.fireAt);
    await m.engine.activate(timer.task);
    // Act: the step runs, and the activation that applies its outcome reads the frozen document.
    await m.runQueued();
    store.frozen = undefined;
    // Assess
    const log = types(await m.events(runId));
    expect(log.filter((type) => type === "workflow_resumed")).toHaveLength(1);
    expect(log.filter((type) => type === "workflow_suspended")).toHaveLength(1);
    expect(await m.run(runId)).toMatchObject({ status: "completed", result: "report" });
  });

  it("suspends a run once when the document still says running but the log has suspended it", async () => {
    // Prepare: the step sent (document frozen there), then the run waiting for its event.
    const store = new LaggingDocument();
    const m = manualEngine({ store, cacheSize: 0 });
    const { runId } = await m.engine.start(fetchThenWait, []);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    store.frozen = await m.run(runId);
    const [task] = m.queue.takeSteps();
    if (!task) throw new Error("no step task");
    await m.engine.executeStep(task);
    const [wake] = m.queue.takeActivations();
    if (!wake) throw new Error("no activation");
    await m.engine.activate(wake);
    // Act: the same activation delivered again, reading the frozen document.
    await m.engine.activate({ ...wake, redelivered: true });
    store.frozen = undefined;
    // Assess
    const log = types(await m.events(runId));
    expect(log.at(-1)).toBe("workflow_suspended");
    expect(log.filter((type) => type === "workflow_suspended")).toHaveLength(1);
    expect(await m.run(runId)).toMatchObject({ status: "suspended" });
  });
});
