import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";

const child = join(import.meta.dirname, "crash-child.ts");

function run(args: string[]): { process: ChildProcess; firstLine: Promise<string>; exit: Promise<string> } {
  const proc = spawn(process.execPath, ["--import", "tsx", child, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let resolveLine: (line: string) => void = () => {};
  const firstLine = new Promise<string>((resolve) => {
    resolveLine = resolve;
  });
  proc.stdout?.on("data", (chunk) => {
    out += chunk;
    const line = out.split("\n").find((candidate) => candidate.startsWith("{"));
    if (line) resolveLine(line);
  });
  proc.stderr?.on("data", (chunk) => {
    err += chunk;
  });
  const exit = new Promise<string>((resolve, reject) =>
    proc.on("exit", (code, signal) =>
      code === 0 || signal === "SIGKILL" ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`)),
    ),
  );
  return { process: proc, firstLine, exit };
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}

async function eventsOf(dir: string, runId: string) {
  const storage = new FileStorage({ dir, readOnly: true });
  return storage.getEvents(runId);
}

describe("a run survives kill -9 of its process", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("resumes in a new process after SIGKILL in the middle of a step, with one step_completed per step", async () => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), "tsw-crash-"));
    const first = run(["start", dir, "steps"]);
    const { runId } = JSON.parse(await first.firstLine) as { runId: string };
    await until(() => existsSync(join(dir, "slow-started")), "the slow step runs");

    // Act
    first.process.kill("SIGKILL");
    await first.exit;
    const second = run(["resume", dir, runId]);
    const finished = JSON.parse(await second.firstLine) as { status: string; result: unknown };
    await second.exit;

    // Assess
    expect(finished.status).toBe("completed");
    expect(finished.result).toBe("prepared + slow done");
    const events = await eventsOf(dir, runId);
    const completed = events.flatMap((event) => (event.type === "step_completed" ? [event.stepId] : []));
    expect(completed).toEqual(["crash_prepare#0", "crash_slow#0", "crash_finish#0"]);
    const effects = readFileSync(join(dir, "side-effects.log"), "utf8").trim().split("\n");
    // The first step completed before the crash and is not run again; the slow one ran in both processes.
    expect(effects.filter((line) => line.startsWith("prepare"))).toHaveLength(1);
    expect(effects.filter((line) => line.startsWith("slow"))).toHaveLength(2);
    expect(effects.filter((line) => line.startsWith("finish"))).toHaveLength(1);
  });

  it("fires a sleep that fell due while no process was running", async () => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), "tsw-crash-"));
    const first = run(["start", dir, "sleepy"]);
    const { runId } = JSON.parse(await first.firstLine) as { runId: string };
    await until(
      async () => (await eventsOf(dir, runId)).some((event) => event.type === "workflow_suspended"),
      "the run sleeps",
    );
    first.process.kill("SIGKILL");
    await first.exit;
    const sleep = (await eventsOf(dir, runId)).find((event) => event.type === "sleep_created");
    await until(
      () => Date.now() > (sleep?.type === "sleep_created" ? sleep.resumeAt : 0) + 200,
      "the sleep is due",
    );

    // Act
    const second = run(["resume", dir, runId]);
    const finished = JSON.parse(await second.firstLine) as { status: string; result: unknown };
    await second.exit;

    // Assess
    expect(finished).toMatchObject({ status: "completed", result: "slept + woke" });
    const types = (await eventsOf(dir, runId)).map((event) => event.type);
    expect(types).toEqual([
      "workflow_started",
      "sleep_created",
      "workflow_suspended",
      "workflow_resumed",
      "sleep_completed",
      "step_started",
      "step_completed",
      "workflow_completed",
    ]);
  });
});
