import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import { waitForEvent } from "../../lib/core/primitives.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { FileControl } from "../../lib/runtimes/file-control.ts";
import { until } from "../local/support/child.ts";
import { REPO_ROOT } from "./run-cli.ts";

const BIN = join(REPO_ROOT, "bin", "tsworkflow.js");
const api = join(REPO_ROOT, "lib", "index.ts");
const engine = join(REPO_ROOT, "lib", "engine", "index.ts");
const local = join(REPO_ROOT, "lib", "local", "index.ts");

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

/** A user's module that exports a schedule firing every second. */
const scheduledModuleText = `
import { step, workflow } from ${JSON.stringify(api)};
import { schedule } from ${JSON.stringify(engine)};
const stamp = step("dev_sched_stamp", async (label: string) => \`\${label} stamped\`);
export const stamped = workflow("dev_sched_stamped", async (label: string) => stamp(label));
export const everySecond = schedule("dev-every-second", stamped, { every: "1s", args: ["tick"], overlap: "allow" });
`;

/** A user's module that configures the API itself (twice, as an app's set-up might), then starts a run. */
const configuringModuleText = `
import { configure, start, step, workflow } from ${JSON.stringify(api)};
import { MemoryStorage } from ${JSON.stringify(local)};
configure({ storage: new MemoryStorage() });
configure({ storage: new MemoryStorage() });
const greet = step("dev_conf_greet", async (name: string) => \`hello \${name}\`);
export const greeting = workflow("dev_conf_greeting", async (name: string) => greet(name));
await start(greeting, ["ann"]);
`;

/** The workflows of moduleText as an earlier version of the app defined them, and one it dropped since. */
const waitingHello = workflow("dev_hello", async (_name: string) => {
  await waitForEvent("go");
  return "never replayed this far here";
});
const gone = workflow("dev_gone", async () => {
  await waitForEvent("never");
});

describe("tsworkflow dev", () => {
  let project: string;
  let dev: ChildProcess | undefined;

  /** `tsworkflow dev ...args` in the project, its stdout and stderr collected. */
  const startDev = (args: string[]) => {
    const child = spawn(process.execPath, [BIN, "dev", ...args, "--port", "0"], {
      cwd: project,
      stdio: ["ignore", "pipe", "pipe"],
    });
    dev = child;
    let output = "";
    for (const stream of [child.stdout, child.stderr])
      stream?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    return { child, output: () => output, exited };
  };

  /** A new project (an ES module package) in a temporary directory with `file` holding `text`; its data directory. */
  const newProject = (file: string, text: string) => {
    project = mkdtempSync(join(tmpdir(), "tsw-dev-"));
    writeFileSync(join(project, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(join(project, file), text);
    return join(project, ".tsworkflow");
  };

  /**
   * Waits, through the data directory, for run `runId` to complete (sending it "go" with `payload` first,
   * when given), then stops dev.
   */
  const completeRun = async (dir: string, runId: string, child: ChildProcess, payload?: unknown) => {
    const control = new FileControl({ dir });
    if (payload !== undefined) await control.sendEvent(runId, "go", payload);
    await until(async () => (await control.getRun(runId))?.status === "completed", "the run completes");
    const run = await control.getRun(runId);
    await control.close();
    child.kill("SIGINT");
    return run;
  };

  /** Opening the directory as its writer throws StorageLockedError while another process holds it. */
  const expectDirectoryFree = async (dir: string) => {
    const storage = new FileStorage({ dir });
    await storage.close();
  };

  afterEach(async () => {
    if (dev && dev.exitCode === null && dev.signalCode === null) {
      const exited = new Promise((done) => dev?.once("exit", done));
      dev.kill("SIGKILL");
      await exited;
    }
    rmSync(project, { recursive: true, force: true });
  });

  it("runs the module with the dashboard, links each run, and restarts the worker on a change, the run going on with the new code", async () => {
    // Prepare
    const dir = newProject("flows.ts", moduleText("hello"));
    const module = join(project, "flows.ts");
    const { child, output, exited } = startDev(["flows.ts"]);
    await until(
      () => /run (run_\S+) \(dev_hello\) started: (http\S+)/.test(output()),
      `a link to the run; ${output()}`,
    );
    const [, runId, runLink] = /run (run_\S+) \(dev_hello\) started: (http\S+)/.exec(output()) as unknown as [
      string,
      string,
      string,
    ];
    const page = await fetch(runLink);
    // Act: the module changes while the run waits; then the event arrives.
    writeFileSync(module, moduleText("hi"));
    await until(() => /flows\.ts changed: restarting the worker/.test(output()), `the restart; ${output()}`);
    await until(() => (output().match(/worker \d+ ready/g) ?? []).length >= 2, `the new worker; ${output()}`);
    const run = await completeRun(dir, runId, child, { suffix: "!" });
    // Assess
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("dev_hello");
    expect(run?.result).toBe("hi ann!");
    expect((output().match(/\(dev_hello\) started/g) ?? []).length).toBe(1);
    expect(await exited).toBe(0);
    expect(readFileSync(module, "utf8")).toContain("hi");
  });

  it("resumes the directory's unfinished runs once the module has registered their workflows, warning only of a workflow it lacks", async () => {
    // Prepare: an earlier app left two waiting runs, one of a workflow the module no longer defines.
    const dir = newProject("flows.ts", moduleText("hello"));
    const runtime = new LocalRuntime({ dir });
    const { runId } = await runtime.start(waitingHello, ["ann"], { idempotencyKey: "dev-ann" });
    const { runId: goneId } = await runtime.start(gone, []);
    await until(async () => (await runtime.getRun(goneId))?.status === "suspended", "the runs wait");
    await runtime.close();
    // Act
    const { child, output, exited } = startDev(["flows.ts"]);
    await until(() => output().includes('run waits for workflow "dev_gone"'), `the warning; ${output()}`);
    const run = await completeRun(dir, runId, child, { suffix: "!" });
    // Assess
    expect(run?.result).toBe("hello ann!");
    expect(output().match(/to be registered in this process/g)).toHaveLength(1);
    expect(await exited).toBe(0);
  });

  it("fires the schedules the module exports and names them at start-up, and fires none with --no-schedules", async () => {
    // Prepare
    const dir = newProject("scheduled.ts", scheduledModuleText);
    // Act: first without schedules, then with them.
    const without = startDev(["scheduled.ts", "--no-schedules"]);
    await until(() => without.output().includes("Ctrl-C stops."), "the start-up");
    without.child.kill("SIGINT");
    const withoutCode = await without.exited;
    const stateWithout = existsSync(join(dir, "schedules.json"));
    const firing = startDev(["scheduled.ts"]);
    const started = /run (run_\S+) \(dev_sched_stamped\) started/;
    await until(() => started.test(firing.output()), "a scheduled run");
    const runId = (started.exec(firing.output()) as RegExpExecArray)[1] as string;
    const run = await completeRun(dir, runId, firing.child);
    // Assess
    expect(withoutCode).toBe(0);
    expect(without.output()).toMatch(/worker \d+ ready\n/);
    expect(stateWithout).toBe(false);
    expect(firing.output()).toMatch(/worker \d+ ready, firing schedules dev-every-second\n/);
    expect(run?.idempotencyKey).toMatch(/^schedule:dev-every-second:\d{4}-/);
    expect(run?.result).toBe("tick stamped");
    expect(await firing.exited).toBe(0);
  });

  it("keeps its own runtime when the module calls configure(), and warns once that the call was ignored", async () => {
    // Prepare
    const dir = newProject("configured.ts", configuringModuleText);
    // Act
    const { child, output, exited } = startDev(["configured.ts"]);
    const started = /run (run_\S+) \(dev_conf_greeting\) started/;
    await until(() => started.test(output()), `the run in the dev directory; ${output()}`, 15_000);
    const runId = (started.exec(output()) as RegExpExecArray)[1] as string;
    await completeRun(dir, runId, child);
    // Assess
    const warnings = output().match(
      /warning: .*configured\.ts called configure\(\): tsworkflow dev ignored it/g,
    );
    expect(warnings).toHaveLength(1);
    expect(output()).toContain(
      `runs your workflows on its own embedded runtime (the file backend in ${dir}). Call configure() where your app starts`,
    );
    expect(await exited).toBe(0);
  });

  it("stops its worker, letting go of the directory, when tsworkflow dev is killed", async () => {
    // Prepare
    const dir = newProject("flows.ts", moduleText("hello"));
    const { child, output, exited } = startDev(["flows.ts"]);
    await until(() => output().includes("Ctrl-C stops."), "the start-up");
    const workerPid = Number((/worker (\d+) ready/.exec(output()) as RegExpExecArray)[1]);
    const alive = () => {
      try {
        process.kill(workerPid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      // Act: killed as a closed terminal or a crash would, with no chance to stop its worker.
      child.kill("SIGKILL");
      await exited;
      await until(() => !alive(), "the worker stops", 20_000);
      // Assess: the directory is free for the next process.
      await expectDirectoryFree(dir);
    } finally {
      if (alive()) process.kill(workerPid, "SIGKILL");
    }
  });

  it("stops cleanly on a Ctrl-C that comes while its worker starts", async () => {
    // Prepare
    const dir = newProject("flows.ts", moduleText("hello"));
    const { child, output, exited } = startDev(["flows.ts"]);
    // Act: the worker holds the directory and is importing the module.
    await until(() => existsSync(join(dir, "lock")), "the worker's lock");
    child.kill("SIGINT");
    const code = await exited;
    // Assess: stopped as a Ctrl-C after start-up stops it, the directory free for the next process.
    expect(code).toBe(0);
    expect(output()).toContain("SIGINT: stopping.");
    await expectDirectoryFree(dir);
  });
});
