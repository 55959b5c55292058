import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  configureLogging,
  InvalidEventError,
  InvalidRunIdError,
  RunFileDamagedError,
  type RunRecord,
  StorageClosedError,
  StorageLockedError,
  sleep,
  step,
  type WorkflowEvent,
  workflow,
} from "tsworkflow";
import { FileControl, FileStorage, LocalRuntime } from "tsworkflow/local";
import { resumeLocal, startLocal } from "tsworkflow/testing";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

let dir: string;
const opened: FileStorage[] = [];

const open = (options: { dir?: string; readOnly?: boolean } = {}) => {
  const storage = new FileStorage({ dir, ...options });
  opened.push(storage);
  return storage;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tsw-file-storage-"));
});

afterEach(async () => {
  for (const storage of opened.splice(0)) await storage.close();
  configureLogging({ level: "silent" });
  rmSync(dir, { recursive: true, force: true });
});

const stamp = step("fs_stamp", async (label: string) => `stamped ${label}`);
const napping = workflow("fs_napping", async (label: string) => {
  const stamped = await stamp(label);
  await sleep("1d");
  return `${stamped}, rested`;
});

const runFile = (runId: string) => join(dir, "runs", `${runId}.jsonl`);

/** Waits until the log file has a line containing `text`. */
async function logged(file: string, text: string): Promise<string> {
  await vi.waitFor(
    () => {
      if (!existsSync(file) || !readFileSync(file, "utf8").includes(text))
        throw new Error(`no "${text}" yet`);
    },
    { timeout: 5_000, interval: 10 },
  );
  return readFileSync(file, "utf8");
}

describe("FileStorage", () => {
  it("keeps runs and their events across a close and a reopen", async () => {
    // Prepare
    const first = open();
    const runId = await startLocal(napping, ["a"], { storage: first, timeSkipping: true });
    const events = await first.getEvents(runId);
    const run = await first.getRun(runId);
    await first.close();
    // Act
    const second = open();
    // Assess
    expect(await second.getRun(runId)).toEqual(run);
    expect(await second.getEvents(runId)).toEqual(events);
    expect(run?.status).toBe("completed");
    expect(second.corrupt.size).toBe(0);
  });

  it("writes one line per commit in the run's file", async () => {
    // Prepare
    const storage = open();
    // Act
    const runId = await startLocal(napping, ["b"], { storage });
    // Assess
    const lines = readFileSync(runFile(runId), "utf8").split("\n").filter(Boolean);
    const commits = lines.map((line) => JSON.parse(line) as { v: number; events: WorkflowEvent[] });
    expect(commits.map((commit) => commit.v)).toEqual([0, 1, 2]);
    expect(commits.map((commit) => commit.events.map((e) => e.type))).toEqual([
      ["workflow_started"],
      ["step_started"],
      ["step_completed", "sleep_created", "workflow_suspended"],
    ]);
  });

  it("drops a torn last line with a warning and loads the run", async () => {
    // Prepare
    const logFile = join(dir, "warnings.log");
    configureLogging({ level: "warning", logFile, jsonLogs: true });
    const first = open();
    const runId = await startLocal(napping, ["c"], { storage: first });
    const intact = await first.getEvents(runId);
    await first.close();
    const sizeBefore = statSync(runFile(runId)).size;
    appendFileSync(runFile(runId), '{"v":5,"events":[{"runId":"');
    // Act
    const second = open();
    // Assess
    expect(await second.getEvents(runId)).toEqual(intact);
    expect((await second.getRun(runId))?.status).toBe("suspended");
    expect(second.corrupt.size).toBe(0);
    expect(statSync(runFile(runId)).size).toBe(sizeBefore);
    const warnings = await logged(logFile, "torn last line");
    expect(warnings).toContain(runId);
    const finished = await resumeLocal(runId, { storage: second, timeSkipping: true });
    expect(finished.status).toBe("completed");
  });

  it("goes on appending after a torn line was dropped, and reloads cleanly", async () => {
    // Prepare
    configureLogging({ level: "silent" });
    const first = open();
    const runId = await startLocal(napping, ["d"], { storage: first });
    await first.close();
    appendFileSync(runFile(runId), '{"v":5,"ev');
    const second = open();
    await resumeLocal(runId, { storage: second, timeSkipping: true });
    const events = await second.getEvents(runId);
    await second.close();
    // Act
    const third = open();
    // Assess
    expect(third.corrupt.size).toBe(0);
    expect(await third.getEvents(runId)).toEqual(events);
    expect((await third.getRun(runId))?.status).toBe("completed");
  });

  it("reports a run file with an invalid event in corrupt, naming the line, and loads the other runs", async () => {
    // Prepare
    configureLogging({ level: "silent" });
    const first = open();
    const goodId = await startLocal(napping, ["good"], { storage: first });
    const badId = await startLocal(napping, ["bad"], { storage: first });
    await first.close();
    const lines = readFileSync(runFile(badId), "utf8").split("\n");
    const edited = JSON.parse(lines[1] as string) as { events: Record<string, unknown>[] };
    (edited.events[0] as Record<string, unknown>).attempt = "first";
    lines[1] = JSON.stringify(edited);
    writeFileSync(runFile(badId), lines.join("\n"));
    // Act
    const second = open();
    // Assess
    expect([...second.corrupt.keys()]).toEqual([badId]);
    const why = second.corrupt.get(badId) ?? "";
    expect(why).toContain("line 2");
    expect(why).toContain("attempt");
    await expect(second.getRun(badId)).rejects.toThrow(RunFileDamagedError);
    expect((await second.getRun(goodId))?.status).toBe("suspended");
    expect((await second.listRuns()).runs.map((run: RunRecord) => run.runId)).toEqual([goodId]);
  });

  it("reports a run file with a line that is not JSON in corrupt", async () => {
    // Prepare
    configureLogging({ level: "silent" });
    const first = open();
    const runId = await startLocal(napping, ["e"], { storage: first });
    await first.close();
    const lines = readFileSync(runFile(runId), "utf8").split("\n");
    lines[1] = "this is not json";
    writeFileSync(runFile(runId), lines.join("\n"));
    // Act
    const second = open();
    // Assess
    expect(second.corrupt.get(runId)).toContain("Line 2");
  });

  it("rejects an invalid event on commit and writes nothing", async () => {
    // Prepare
    const storage = open();
    const runId = await startLocal(napping, ["f"], { storage });
    const run = await storage.getRun(runId);
    const sizeBefore = statSync(runFile(runId)).size;
    const invalid = { runId, seq: (run?.version ?? 0) + 1, timestamp: "x", type: "sleep_completed" };
    // Act
    const commit = storage.commit(runId, run?.version ?? 0, [invalid as unknown as WorkflowEvent], {
      status: "running",
      updatedAt: new Date().toISOString(),
    });
    // Assess
    await expect(commit).rejects.toThrow(InvalidEventError);
    expect(statSync(runFile(runId)).size).toBe(sizeBefore);
    expect(await storage.getRun(runId)).toEqual(run);
  });

  it("throws StorageLockedError for a second FileStorage on the same directory in this process", () => {
    // Prepare
    open();
    // Act
    const second = () => new FileStorage({ dir });
    // Assess
    expect(second).toThrow(StorageLockedError);
    expect(second).toThrow(String(process.pid));
  });

  it("lets a FileStorage open the directory again once the first one is closed", async () => {
    // Prepare
    const first = open();
    await first.close();
    // Act
    const second = open();
    // Assess
    expect(second.dir).toBe(first.dir);
    expect(second.holder()).toContain(`process ${process.pid}`);
  });

  it("refuses the writes of a closed FileStorage with StorageClosedError, a reader's requests (events, cancellations) too", async () => {
    // Prepare
    const writer = open();
    const runId = await startLocal(napping, ["closed"], { storage: writer });
    await writer.close();
    const control = new FileControl({ dir });
    await control.close();
    const before = readdirSync(dir).sort();
    // Act
    const attempts = {
      watchInbox: (async () => writer.watchInbox(async () => {}))(),
      requestRetry: control.storage.requestRetry(runId, 3),
      sendEvent: control.sendEvent(runId, "nudge", { n: 1 }),
      cancelRun: control.cancelRun(runId, "too late"),
    };
    // Assess
    for (const [what, attempt] of Object.entries(attempts))
      await expect(attempt, what).rejects.toThrow(StorageClosedError);
    await expect(attempts.sendEvent).rejects.toThrow(`The FileStorage of ${dir} was closed`);
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it.each(["../escape", "../../etc/passwd", "a/b", "..", "/tmp/x", "run\\x", "run.jsonl"])(
    "rejects the run id %j, which could escape the directory",
    async (runId) => {
      // Prepare
      const storage = open();
      const now = new Date().toISOString();
      const run: RunRecord = {
        runId,
        workflowName: "fs_napping",
        status: "pending",
        input: [],
        createdAt: now,
        updatedAt: now,
        version: 1,
      };
      const startedEvent = {
        runId,
        seq: 1,
        timestamp: now,
        type: "workflow_started",
        workflowName: "fs_napping",
        input: [],
      } as WorkflowEvent;
      // Act
      const attempts = [
        storage.getRun(runId),
        storage.getEvents(runId),
        storage.createRun({ run, startedEvent }),
        storage.commit(runId, 1, [], { status: "running", updatedAt: now }),
      ];
      // Assess
      for (const attempt of attempts) await expect(attempt).rejects.toThrow(InvalidRunIdError);
      expect(readdirSync(join(dir, "runs"))).toEqual([]);
      expect(readdirSync(dir).sort()).toEqual(["lock", "runs"]);
    },
  );

  it("reads a directory another process writes to without taking its lock when read-only", async () => {
    // Prepare
    const writer = open();
    const runId = await startLocal(napping, ["h"], { storage: writer });
    // Act
    const reader = open({ readOnly: true });
    const seen = await reader.getRun(runId);
    await resumeLocal(runId, { storage: writer, timeSkipping: true });
    const later = await reader.getRun(runId);
    // Assess
    expect(seen?.status).toBe("suspended");
    expect(later?.status).toBe("completed");
    expect(reader.holder()).toContain(`process ${process.pid}`);
  });
});

describe("FileStorage's memory", () => {
  const quick = workflow("fs_quick", async (label: string) => stamp(label));

  it("keeps only runs in flight with their logs, and finished ones in a cache bounded by finishedCacheEvents", async () => {
    // Prepare
    const storage = new FileStorage({ dir, finishedCacheEvents: 60 });
    opened.push(storage);
    const runtime = new LocalRuntime({ storage });
    const sleeping = await runtime.start(napping, ["awake"]);
    // Act
    const finished: string[] = [];
    for (let n = 0; n < 40; n += 1) {
      const { runId } = await runtime.start(quick, [`q${n}`]);
      await runtime.waitForRun(runId);
      finished.push(runId);
    }
    await vi.waitFor(() => expect(storage.liveRuns).toBe(1), { timeout: 10_000 });
    const eventsPerRun = (await storage.getEvents(finished[0] as string)).length;
    // Assess
    expect(storage.cachedFinishedRuns).toBeGreaterThan(0);
    expect(storage.cachedFinishedRuns * (eventsPerRun + 1)).toBeLessThanOrEqual(60);
    expect((await storage.getRun(finished[0] as string))?.result).toBe("stamped q0");
    expect((await storage.getRun(sleeping.runId))?.status).toBe("suspended");
    await runtime.close();
  });

  it("opens a directory reading only the runs in flight, and lists and reads the finished ones on demand", async () => {
    // Prepare
    const first = new LocalRuntime({ dir });
    const sleeping = await first.start(napping, ["awake"]);
    const finished: string[] = [];
    for (let n = 0; n < 12; n += 1) {
      const { runId } = await first.start(quick, [`q${n}`]);
      await first.waitForRun(runId);
      finished.push(runId);
    }
    await first.close();
    // Act
    const reopened = open();
    const inMemory = { live: reopened.liveRuns, cached: reopened.cachedFinishedRuns };
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await reopened.listRuns({ limit: 5, ...(cursor ? { cursor } : {}) });
      pages.push(page.runs.map((run) => run.runId));
      cursor = page.nextCursor;
    } while (cursor);
    const completed = await reopened.listRuns({ status: "completed", limit: 100 });
    // Assess
    expect(inMemory).toEqual({ live: 1, cached: 0 });
    expect(pages.flat().sort()).toEqual([sleeping.runId, ...finished].sort());
    expect(completed.runs).toHaveLength(12);
    expect(completed.runs.find((run) => run.runId === finished[3])).toMatchObject({ result: "stamped q3" });
    expect(await reopened.getEvents(finished[3] as string)).toHaveLength(
      (await reopened.getEvents(finished[4] as string)).length,
    );
    expect(reopened.cachedFinishedRuns).toBe(2);
  });
});
