import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileControl } from "../../lib/runtimes/file-control.ts";
import { until } from "../local/support/child.ts";
import { REPO_ROOT } from "./run-cli.ts";

const BIN = join(REPO_ROOT, "bin", "tsworkflow.js");
const api = join(REPO_ROOT, "lib", "index.ts");

/** A user's module: a workflow that waits for "go", then greets; importing it starts one run (once). */
const moduleText = (greeting: string) => `
import { start, step, waitForEvent, workflow } from ${JSON.stringify(api)};
const greet = step("dev_greet", async (name: string) => \`${greeting} \${name}\`);
export const hello = workflow("dev_hello", async (name: string) => {
  const { suffix } = await waitForEvent<{ suffix: string }>("go");
  return (await greet(name)) + suffix;
});
await start(hello, ["ann"], { idempotencyKey: "dev-ann" });
`;

describe("tsworkflow dev", () => {
  let project: string;
  let dev: ChildProcess | undefined;
  afterEach(async () => {
    if (dev && dev.exitCode === null) {
      const exited = new Promise((done) => dev?.once("exit", done));
      dev.kill("SIGKILL");
      await exited;
    }
    rmSync(project, { recursive: true, force: true });
  });

  it("runs the module with the dashboard, links each run, and restarts the worker on a change, the run going on with the new code", async () => {
    // Prepare
    project = mkdtempSync(join(tmpdir(), "tsw-dev-"));
    const module = join(project, "flows.ts");
    const dir = join(project, ".tsworkflow");
    writeFileSync(join(project, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(module, moduleText("hello"));
    dev = spawn(process.execPath, [BIN, "dev", "flows.ts", "--port", "0"], {
      cwd: project,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    dev.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    dev.stderr?.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    const exited = new Promise<number | null>((done) => dev?.once("exit", (code) => done(code)));
    await until(
      () => /run (run_\S+) \(dev_hello\) started: (http\S+)/.test(out),
      `a link to the run; ${out}${err}`,
    );
    const [, runId, runLink] = /run (run_\S+) \(dev_hello\) started: (http\S+)/.exec(out) as unknown as [
      string,
      string,
      string,
    ];
    const page = await fetch(runLink);
    // Act: the module changes while the run waits; then the event arrives.
    writeFileSync(module, moduleText("hi"));
    await until(() => /flows\.ts changed: restarting the worker/.test(out), `the restart; ${out}${err}`);
    await until(() => (out.match(/worker \d+ ready/g) ?? []).length >= 2, `the new worker; ${out}${err}`);
    const control = new FileControl({ dir });
    await control.sendEvent(runId, "go", { suffix: "!" });
    await until(async () => (await control.getRun(runId))?.status === "completed", "the run completes");
    const run = await control.getRun(runId);
    await control.close();
    dev.kill("SIGINT");
    // Assess
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("dev_hello");
    expect(run?.result).toBe("hi ann!");
    expect((out.match(/\(dev_hello\) started/g) ?? []).length).toBe(1);
    expect(await exited).toBe(0);
    expect(readFileSync(module, "utf8")).toContain("hi");
  });
});
