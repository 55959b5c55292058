/**
 * An activation reads the run's document, then its log. Another worker may commit in between, so the
 * document can say less than the log: the log decides whether the run is suspended, so a run is never
 * suspended or resumed twice in a row.
 */
import { configureLogging, sleep, step, waitForEvent, workflow } from "tsworkflow";
import type { EventStore, RunRecord } from "tsworkflow/engine";
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

const twoNaps = workflow("stale_doc_two_naps", async () => {
  await sleep("1m");
  await sleep("1m");
  return "rested";
});

/** A memory store whose `getRun` answers with a document the test froze, while the log moves on. */
class LaggingDocument extends MemoryStorage {
  frozen: RunRecord | undefined;
  logReads = 0;
  override async getRun(runId: string): Promise<RunRecord | undefined> {
    return this.frozen ?? super.getRun(runId);
  }
  override async getEvents(runId: string) {
    this.logReads += 1;
    return super.getEvents(runId);
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

describe("a warm copy and the document's version", () => {
  /** A run whose step is out (running), held warm by the engine; then an activation with nothing to do. */
  async function noOpActivation(documentVersion: (version: number) => number) {
    const store = new LaggingDocument();
    const m = manualEngine({ store });
    const { runId } = await m.engine.start(fetchThenWait, []);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    const run = await m.run(runId);
    store.frozen = { ...run, version: documentVersion(run.version) };
    store.logReads = 0;
    await m.engine.activate({ runId, cause: { kind: "timer", timerId: "sleep:none" } });
    return { logReads: store.logReads, events: types(await m.events(runId)) };
  }

  it("keeps the warm copy when the document is behind it (the DynamoDB store leaves a running run's behind)", async () => {
    // Act
    const { logReads, events } = await noOpActivation((version) => version - 1);
    // Assess: no replay, nothing committed.
    expect(logReads).toBe(0);
    expect(events.at(-1)).toBe("step_started");
  });

  it("reads the log again when the document is past the warm copy (another worker moved the run on)", async () => {
    // Act
    const { logReads } = await noOpActivation((version) => version + 1);
    // Assess
    expect(logReads).toBeGreaterThan(0);
  });
});

describe("an engine that holds an older copy of a run", () => {
  it("reads the run again when a timer armed by a later version reaches it, instead of committing from the old copy", async () => {
    // Prepare: two engines on one store, as two Lambda instances. The first arms the first sleep (and keeps
    // the run); the second wakes it and arms the second sleep; that timer comes back to the first.
    const store = new MemoryStorage();
    let failedCommits = 0;
    const counted = new Proxy(store, {
      get(target, property, receiver) {
        if (property !== "commit") return Reflect.get(target, property, receiver);
        return (...args: Parameters<EventStore["commit"]>) =>
          target.commit(...args).catch((error: unknown) => {
            failedCommits += 1;
            throw error;
          });
      },
    });
    const a = manualEngine({ store: counted });
    const b = manualEngine({ store: counted });
    const { runId } = await a.engine.start(twoNaps, []);
    await a.runQueued();
    const first = a.timers.takeEarliest();
    if (!first) throw new Error("no first timer");
    b.clock.advanceTo(first.fireAt);
    await b.engine.activate(first.task);
    const second = b.timers.takeEarliest();
    if (!second) throw new Error("no second timer");
    // Act
    a.clock.advanceTo(second.fireAt);
    await a.engine.activate(second.task);
    // Assess
    expect(second.task.minVersion).toBeGreaterThan(first.task.minVersion ?? Number.POSITIVE_INFINITY);
    expect(failedCommits).toBe(0);
    expect(await a.run(runId)).toMatchObject({ status: "completed", result: "rested" });
    expect(types(await a.events(runId)).filter((type) => type === "sleep_completed")).toHaveLength(2);
  });
});
