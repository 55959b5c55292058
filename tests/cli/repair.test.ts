/**
 * `tsworkflow runs repair`: the README's repair of a damaged run file as one command, refused while an app
 * owns the directory.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { runCli } from "./run-cli.ts";

const add = step("cli_repair_add", async (n: number) => n + 1);
const threeSteps = workflow("cli_repair_three", async () => {
  let n = 0;
  for (let i = 0; i < 3; i += 1) n = await add(n);
  return n;
});

let dir: string;
let runId: string;
let file: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tsw-cli-repair-"));
  const runtime = new LocalRuntime({ dir });
  ({ runId } = await runtime.start(threeSteps, []));
  await runtime.waitForRun(runId);
  await runtime.close();
  file = join(dir, "runs", `${runId}.jsonl`);
  const lines = readFileSync(file, "utf8").split("\n");
  lines[2] = "{not json";
  writeFileSync(file, lines.join("\n"));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("tsworkflow runs repair", () => {
  it("refuses while an app owns the directory, then cuts the file before its damaged line, keeping a copy", async () => {
    // Prepare: the app owns the directory.
    const app = new FileStorage({ dir });
    const held = await runCli(["runs", "repair", runId, "--dir", dir]);
    await app.close();
    // Act
    const repaired = await runCli(["runs", "repair", runId, "--dir", dir]);
    const show = await runCli(["runs", "show", runId, "--dir", dir]);
    const again = await runCli(["runs", "repair", runId, "--dir", dir]);
    // Assess
    expect(held.code).toBe(1);
    expect(held.stderr).toMatch(
      new RegExp(
        `^error: Cannot repair run ${runId} while process ${process.pid} \\(since [^)]+\\) owns ${dir}: stop the app, then run the command again\\.\n$`,
      ),
    );
    expect(repaired).toMatchObject({ code: 0, stderr: "" });
    const copy = /The file as it was is in (\S+)\.\n/.exec(repaired.stdout)?.[1] as string;
    expect(repaired.stdout).toBe(
      `Run ${runId}: cut 3 of its 5 lines from line 3; it is running at its last kept commit. The file as it was is in ${copy}.\nStart the app: the run goes on from there, and the steps recorded in the lines cut off run again.\n`,
    );
    expect(copy.startsWith(join(dir, "damaged", runId))).toBe(true);
    expect(readFileSync(copy, "utf8")).toContain("{not json");
    expect(readFileSync(file, "utf8").split("\n").filter(Boolean)).toHaveLength(2);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/status\s+running/);
    expect(again).toMatchObject({
      code: 0,
      stdout: `Run ${runId}'s file is not damaged: nothing to repair.\n`,
    });
  });

  it("says only the file backend keeps run files", async () => {
    // Act
    const result = await runCli(["runs", "repair", runId, "--redis", "redis://127.0.0.1:1"]);
    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Only the file backend's run files can be repaired");
  });
});
