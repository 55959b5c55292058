/**
 * The file backend under the faults a disk sees: a power loss that keeps only a prefix of a run's
 * file (the commits not yet fdatasync'd are gone, the last one perhaps half written), files truncated
 * or edited by hand. Every case ends in a clear outcome for the damaged run while the others go on.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, type RunRecord, sleep, step, workflow } from "tsworkflow";
import type { FileStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileBackend, waitForFinished } from "./support/backends.ts";
import {
  CRASH_FLOW_STEPS,
  canonicalTuples,
  completionsPerStep,
  crashFlow,
  executions,
} from "./support/crash-workflow.ts";
import { CrashSwitch } from "./support/faults.ts";

const runFile = (dir: string, runId: string) => join(dir, "runs", `${runId}.jsonl`);
const alive = () => new CrashSwitch(undefined);

const fetchUser = step("ff_fetch", async (id: string) => ({ id, name: `user ${id}` }));
const greet = step("ff_greet", async (name: string) => `hello ${name}`);
/** Suspended in its sleep once its first step is done: a run in flight for the disk to damage. */
const nap = workflow("ff_nap", async (id: string) => {
  const user = await fetchUser(id);
  await sleep("200ms");
  return greet(user.name);
});

beforeAll(() => {
  configureLogging({ level: "silent" });
});

afterAll(() => {
  configureLogging();
});

/** Starts `ids` runs of `nap` in a new directory and leaves them suspended in their sleep, the directory closed. */
async function suspendedRuns(ids: string[]): Promise<{ dir: string; runIds: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "tsw-file-faults-"));
  const backend = fileBackend(dir);
  const worker = await backend.startWorker(alive());
  const runIds: string[] = [];
  for (const id of ids) runIds.push((await worker.engine.start(nap, [id])).runId);
  for (const runId of runIds) {
    for (;;) {
      const run = await backend.reader().getRun(runId);
      if (run?.status === "suspended") break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  await worker.stop();
  await backend.reader().close();
  return { dir, runIds };
}

describe("the file backend after a power loss", () => {
  it("finishes a run from every prefix of its file that a power loss can leave, torn or not", async () => {
    // Prepare: an undisturbed run, and its file line by line (one commit per line).
    const source = fileBackend();
    const worker = await source.startWorker(alive());
    const { runId } = await worker.engine.start(crashFlow, ["undisturbed"]);
    const baseline = await waitForFinished(source.reader(), runId);
    const canonical = canonicalTuples(await source.reader().getEvents(runId));
    await worker.stop();
    const lines = readFileSync(runFile((source.reader() as FileStorage).dir, runId), "utf8")
      .split("\n")
      .filter(Boolean);
    await source.close();
    const outcomes: {
      label: string;
      kept: number;
      run: RunRecord;
      canonical: string[];
      completions: Record<string, number>;
      rerun: Record<string, number>;
    }[] = [];

    // Act: the file as the disk may hold it after a power loss: the first `kept` commits, maybe half of the next.
    for (let kept = 1; kept < lines.length; kept += 1) {
      for (const torn of [false, true]) {
        const dir = mkdtempSync(join(tmpdir(), "tsw-power-loss-"));
        mkdirSync(join(dir, "runs"));
        const next = lines[kept] as string;
        const tail = torn ? next.slice(0, Math.floor(next.length / 2)) : "";
        writeFileSync(runFile(dir, runId), `${lines.slice(0, kept).join("\n")}\n${tail}`);
        for (const stepId of CRASH_FLOW_STEPS) executions.delete(`${runId}:${stepId}`);
        const backend = fileBackend(dir);
        const restarted = await backend.startWorker(alive());
        const run = await waitForFinished(backend.reader(), runId);
        const events = await backend.reader().getEvents(runId);
        await restarted.stop();
        await backend.close();
        outcomes.push({
          label: `${kept} of ${lines.length} lines kept${torn ? ", the next one torn" : ""}`,
          kept,
          run,
          canonical: canonicalTuples(events),
          completions: completionsPerStep(events),
          rerun: Object.fromEntries(
            CRASH_FLOW_STEPS.map((stepId) => [stepId, executions.get(`${runId}:${stepId}`) ?? 0]),
          ),
        });
      }
    }

    // Assess: the same result and log; a step whose completion survived never runs again, a lost one runs once more.
    expect(outcomes.length).toBe(2 * (lines.length - 1));
    const once = Object.fromEntries(CRASH_FLOW_STEPS.map((id) => [id, 1]));
    for (const { label, kept, run, canonical: log, completions, rerun } of outcomes) {
      expect(run.result, label).toEqual(baseline.result);
      expect(log, label).toEqual(canonical);
      expect(completions, label).toEqual(once);
      const survived = lines
        .slice(0, kept)
        .flatMap((line) => (JSON.parse(line) as { events: { type: string; stepId?: string }[] }).events)
        .filter((event) => event.type === "step_completed")
        .map((event) => event.stepId as string);
      const expected = Object.fromEntries(
        CRASH_FLOW_STEPS.map((stepId) => [stepId, survived.includes(stepId) ? 0 : 1]),
      );
      expect(rerun, label).toEqual(expected);
    }
  });
});

describe("damaged run files", () => {
  it("leaves out runs whose file is empty, torn in its first line or edited into an invalid event, says so when asked for them, and finishes the others", async () => {
    // Prepare
    const { dir, runIds } = await suspendedRuns(["healthy", "emptied", "torn", "edited"]);
    const [healthy, emptied, torn, edited] = runIds as [string, string, string, string];
    writeFileSync(runFile(dir, emptied), "");
    writeFileSync(runFile(dir, torn), readFileSync(runFile(dir, torn), "utf8").slice(0, 40));
    const lines = readFileSync(runFile(dir, edited), "utf8").split("\n");
    const commit = JSON.parse(lines[2] as string) as { events: Record<string, unknown>[] };
    (commit.events[0] as Record<string, unknown>).type = "step_exploded";
    lines[2] = JSON.stringify(commit);
    writeFileSync(runFile(dir, edited), lines.join("\n"));
    const backend = fileBackend(dir);
    const storage = backend.reader() as FileStorage;

    // Act
    const worker = await backend.startWorker(alive());
    const finished = await waitForFinished(storage, healthy);
    await worker.stop();

    // Assess
    expect(finished.status).toBe("completed");
    expect(finished.result).toBe("hello user healthy");
    expect([...storage.corrupt.keys()].sort()).toEqual([emptied, torn, edited].sort());
    expect(storage.corrupt.get(emptied)).toContain(`The log of run ${emptied} is empty`);
    expect(storage.corrupt.get(torn)).toContain(`The log of run ${torn} is empty`);
    expect(storage.corrupt.get(edited)).toContain("line 3");
    for (const runId of [emptied, torn, edited])
      await expect(storage.getRun(runId)).rejects.toThrow(`Run ${runId} exists but its file`);
    expect((await storage.listRuns()).runs.map((run) => run.runId)).toEqual([healthy]);
    await backend.close();
  });

  it("fails a run whose log was edited into events the workflow does not make, naming both", async () => {
    // Prepare: the first step's events now name a step the workflow never calls (valid events, wrong history).
    const { dir, runIds } = await suspendedRuns(["renamed", "untouched"]);
    const [renamed, untouched] = runIds as [string, string];
    const text = readFileSync(runFile(dir, renamed), "utf8");
    writeFileSync(runFile(dir, renamed), text.replaceAll("ff_fetch", "ff_lookup"));
    const backend = fileBackend(dir);

    // Act
    const worker = await backend.startWorker(alive());
    const failed = await waitForFinished(backend.reader(), renamed);
    const other = await waitForFinished(backend.reader(), untouched);
    await worker.stop();

    // Assess
    expect(failed.status).toBe("failed");
    expect(failed.error?.name).toBe("NonDeterminismError");
    expect(failed.error?.message).toContain('step "ff_lookup" (ff_lookup#0)');
    expect(failed.error?.message).toContain('step "ff_fetch" (ff_fetch#0)');
    expect(other.status).toBe("completed");
    await backend.close();
  });
});
