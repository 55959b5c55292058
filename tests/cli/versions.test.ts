import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import { createDashboard } from "../../lib/cli/dashboard/server.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { REPO_ROOT, runCli } from "./run-cli.ts";

/** Workflow versions and continueAsNew chains as the CLI and the dashboard show them. */

const dir = mkdtempSync(join(tmpdir(), "tsw-cli-versions-"));
const runs = join(dir, "runs");
let v1: string;
let v2: string;
let chainHead: string;
let chainEnd: string;

beforeAll(async () => {
  configureLogging({ level: "silent" });
  const module = join(dir, "workflows.mjs");
  writeFileSync(
    module,
    `import { continueAsNew, waitForEvent, workflow } from ${JSON.stringify(join(REPO_ROOT, "lib/index.ts"))};
export const v1 = workflow("cli_v_flow", async () => "one", { version: "1" });
export const v2 = workflow("cli_v_flow", async () => "two", { version: "2" });
export const chain = workflow("cli_v_chain", async (n) => {
  if (n < 2) return continueAsNew(n + 1);
  await waitForEvent("stop");
  return n;
});
`,
  );
  const code = (await import(module)) as Record<string, Parameters<LocalRuntime["start"]>[0]>;
  const runtime = new LocalRuntime({ storage: new FileStorage({ dir: runs }) });
  const first = await runtime.start(code.v1 as never, []);
  const second = await runtime.start(code.v2 as never, []);
  chainHead = (await runtime.start(code.chain as never, [0])).runId;
  await runtime.waitForRun(first.runId, { timeoutMs: 10_000 });
  await runtime.waitForRun(second.runId, { timeoutMs: 10_000 });
  v1 = first.runId;
  v2 = second.runId;
  for (let tries = 0; tries < 400 && !chainEnd; tries += 1) {
    const page = await runtime.listRuns({ workflowName: "cli_v_chain", status: "suspended" });
    chainEnd = page.runs[0]?.runId as string;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await runtime.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("versions and continued runs in the CLI and the dashboard", () => {
  it("lists runs of one workflow version with runs list --workflow-version, and shows the version", async () => {
    // Act
    const only1 = await runCli(["runs", "list", "--workflow-version", "1", "--json", "--dir", runs]);
    const table = await runCli(["runs", "list", "--workflow", "cli_v_flow", "--dir", runs]);
    const shown = await runCli(["runs", "show", v2, "--dir", runs]);
    // Assess
    expect((JSON.parse(only1.stdout) as { runs: { runId: string }[] }).runs.map((run) => run.runId)).toEqual([
      v1,
    ]);
    expect(table.stdout).toMatch(new RegExp(`${v2}\\s+cli_v_flow v2`));
    expect(shown.stdout).toMatch(/version\s+2/);
  });

  it("links a chain of continued runs and cancels its live end from the first run's id", async () => {
    // Act
    const head = await runCli(["runs", "show", chainHead, "--dir", runs]);
    const end = await runCli(["runs", "show", chainEnd, "--dir", runs]);
    const events = await runCli(["runs", "events", chainHead, "--dir", runs]);
    const cancel = await runCli(["runs", "cancel", chainHead, "--dir", runs]);
    // Assess
    expect(head.stdout).toMatch(/status\s+continued/);
    expect(head.stdout).toMatch(/continued as run\s+cont_/);
    expect(end.stdout).toMatch(/continues run\s+cont_/);
    expect(events.stdout).toMatch(/workflow_continued_as_new\s+continued as run cont_\w+ with \[1\]/);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toContain(`Cancellation of run ${chainEnd}`);
  });

  it("shows the version and the chain on the dashboard's run page, and filters runs by version", async () => {
    // Prepare
    const storage = new FileStorage({ dir: runs });
    const app = createDashboard({ storage });
    // Act
    const page = await (await app.request(`/runs/${chainHead}`)).text();
    const versioned = await (await app.request(`/runs/${v1}`)).text();
    const filtered = await (await app.request("/?version=2")).text();
    await storage.close();
    // Assess
    expect(page).toMatch(/Continued as run<\/dt>\s*<dd><a href="\/runs\/cont_/);
    expect(versioned).toMatch(/Version<\/dt>\s*<dd><code>1<\/code>/);
    expect(filtered).toContain(v2);
    expect(filtered).not.toContain(v1);
  });
});
