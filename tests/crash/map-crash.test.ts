import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";

const child = join(import.meta.dirname, "map-child.ts");

/** Runs the child to its end (or its SIGKILL) and returns its output. */
function runChildProcess(args: string[]): Promise<{ out: string; signal: NodeJS.Signals | null }> {
  const proc = spawn(process.execPath, ["--import", "tsx", child, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout?.on("data", (chunk) => {
    out += chunk;
  });
  proc.stderr?.on("data", (chunk) => {
    err += chunk;
  });
  return new Promise((resolve, reject) =>
    proc.on("exit", (code, signal) =>
      code === 0 || signal === "SIGKILL"
        ? resolve({ out, signal })
        : reject(new Error(`child exited ${code}: ${err}`)),
    ),
  );
}

/** The most copies of the step that ran at once in any one process, from the child's `copies.log`. */
function highestCopies(dir: string): number {
  const running = new Map<string, number>();
  let highest = 0;
  for (const line of readFileSync(join(dir, "copies.log"), "utf8").trim().split("\n")) {
    const [kind, , pid] = line.split(" ") as [string, string, string];
    const now = (running.get(pid) ?? 0) + (kind === "start" ? 1 : -1);
    running.set(pid, now);
    highest = Math.max(highest, now);
  }
  return highest;
}

describe("map() on the file backend across SIGKILL", () => {
  it("finishes every item in a new process, in item order, never over the limit (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 24 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 24 }),
        async (items, concurrency, killAt) => {
          const dir = mkdtempSync(join(tmpdir(), "tsw-map-crash-"));
          try {
            // Prepare: a first process dies in the middle of the killAt-th step execution.
            const first = await runChildProcess([
              "start",
              dir,
              String(items),
              String(concurrency),
              String(Math.min(killAt, items)),
            ]);
            expect(first.signal).toBe("SIGKILL");
            const { runs } = await new FileStorage({ dir, readOnly: true }).listRuns();
            const runId = runs[0]?.runId as string;

            // Act
            const second = await runChildProcess(["resume", dir, runId]);

            // Assess
            const run = JSON.parse(second.out.trim().split("\n").pop() as string);
            expect(run).toMatchObject({
              status: "completed",
              result: Array.from({ length: items }, (_, item) => item * 10),
            });
            expect(highestCopies(dir)).toBeLessThanOrEqual(concurrency);
            const events = await new FileStorage({ dir, readOnly: true }).getEvents(runId);
            const completed = events.filter((event) => event.type === "step_completed").length;
            expect(completed).toBe(items);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: Number(process.env.TSW_PROPERTY_RUNS ?? 5) },
    );
  }, 180_000);
});
