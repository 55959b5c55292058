import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDashboard, serveDashboard } from "../../lib/cli/dashboard/server.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { workflow } from "../../lib/core/workflow.ts";
import type { RunRecord, RunStatus } from "../../lib/ports/event-store.ts";
import { type RedisServer, startRedisServer } from "../../lib/redis/redis-server.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { until } from "../local/support/child.ts";
import { bothLimits, fanOut, gate, globalOne, napper, ratedRuns } from "./fixtures/waiting-workflows.ts";
import { runCli } from "./run-cli.ts";
import { launchChromium, startDashboard, stopDashboard } from "./support/dashboard-process.ts";

/** The status a run reaches, read from `read` until it does. */
async function reach(
  read: (runId: string) => Promise<RunRecord | undefined>,
  runId: string,
  status: RunStatus,
) {
  await until(async () => (await read(runId))?.status === status, `run ${runId} is ${status}`, 30_000);
}

type ListedRun = RunRecord & { waitingFor: string[] };

const SLOT_OF_BOTH = "a run concurrency slot of key run:cli_both_limits:acme (at most 2 at once)";
const START_OF_BOTH = "its start under rate limit run:cli_both_limits:acme (at most 1 per 1h)";

describe("what runs wait for, on the file backend", () => {
  let dir: string;
  const runIds: Record<string, string> = {};
  const cli = (...args: string[]) => runCli([...args, "--dir", dir]);

  beforeAll(async () => {
    configureLogging({ level: "silent" });
    dir = mkdtempSync(join(tmpdir(), "tsw-cli-waits-"));
    const runtime = new LocalRuntime({ dir });
    const start = async (label: string, run: Promise<{ runId: string }>) => {
      runIds[label] = (await run).runId;
      await runtime.idle();
    };
    try {
      await start("globalHolder", runtime.start(globalOne, []));
      await start("globalQueued", runtime.start(globalOne, []));
      await start("ratedFirst", runtime.start(ratedRuns, ["first"]));
      await start("ratedQueued", runtime.start(ratedRuns, ["second"]));
      await start("bothHolder", runtime.start(bothLimits, ["acme"]));
      await start("bothSlotHeld", runtime.start(bothLimits, ["acme"]));
      await start("bothQueued", runtime.start(bothLimits, ["acme"]));
      // A sleep that falls due while no app runs.
      await start("napping", runtime.start(napper, [300]));
    } finally {
      await runtime.close();
      configureLogging();
    }
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("names a limit without a key by the workflow's key, with no dangling colon", async () => {
    // Act
    const list = await cli("runs", "list", "--status", "pending");
    // Assess
    const row = (label: string) =>
      list.stdout.split("\n").find((line) => line.startsWith(runIds[label] ?? "?"));
    expect(row("globalQueued")).toMatch(
      /a run concurrency slot of key run:cli_global_one \(at most 1 at once\)$/,
    );
    expect(row("ratedQueued")).toMatch(/its start under rate limit run:cli_rated_runs \(at most 1 per 1h\)$/);
    expect(list.stdout).not.toMatch(/run:cli_(global_one|rated_runs): /);
  });

  it("names both limits of a run in the order it takes them, as the app's slots cannot be read here", async () => {
    // Act
    const show = await cli("runs", "show", runIds.bothSlotHeld ?? "");
    // Assess
    expect(show.stdout).toMatch(
      new RegExp(`waiting for +${literal(`${SLOT_OF_BOTH}, then ${START_OF_BOTH}`)}\n`),
    );
  });

  it("says a sleep is overdue and waits for an app with its workflow, once its time has passed", async () => {
    // Prepare
    await new Promise((resolve) => setTimeout(resolve, 400));
    // Act
    const show = await cli("runs", "show", runIds.napping ?? "");
    // Assess
    expect(show.stdout).toMatch(
      /waiting for +sleep#0 until \S+, an app that registers workflow cli_napper to go on \(its timer was due at \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\)\n/,
    );
  });

  it("gives each waiting run's reasons in runs show --json, runs list --json and GET /api/runs/<id>", async () => {
    // Prepare
    const { FileStorage } = await import("../../lib/adapters/file/file-storage.ts");
    const storage = new FileStorage({ dir, readOnly: true });
    const dashboard = createDashboard({ storage, runner: "an app" });
    const runId = runIds.globalQueued ?? "";
    const reason = "a run concurrency slot of key run:cli_global_one (at most 1 at once)";
    // Act
    const [show, list, response] = await Promise.all([
      cli("runs", "show", runId, "--json"),
      cli("runs", "list", "--json"),
      dashboard.request(`/api/runs/${runId}`),
    ]);
    // Assess
    expect((JSON.parse(show.stdout) as ListedRun).waitingFor).toEqual([reason]);
    const listed = (JSON.parse(list.stdout) as { runs: ListedRun[] }).runs;
    expect(listed.find((run) => run.runId === runId)?.waitingFor).toEqual([reason]);
    expect(listed.find((run) => run.runId === runIds.ratedFirst)?.waitingFor).toEqual([]);
    expect(((await response.json()) as { waitingFor: string[] }).waitingFor).toEqual([reason]);
  });
});

describe("a step attempt that waits for its concurrency slot", () => {
  it("reads as possibly waiting in runs show while it has no outcome, and with its measured wait once it has one", async () => {
    // Prepare
    configureLogging({ level: "silent" });
    const dir = mkdtempSync(join(tmpdir(), "tsw-cli-step-slot-"));
    const runtime = new LocalRuntime({ dir });
    const dashboard = await serveDashboard({ storage: runtime, port: 0 });
    const browser = await launchChromium();
    try {
      const { runId } = await runtime.start(fanOut, []);
      await until(
        async () =>
          (await runtime.getEvents(runId)).filter((event) => event.type === "step_started").length === 2,
        "both attempts are sent",
      );
      // Act
      const waiting = await runCli(["runs", "show", runId, "--dir", dir]);
      const page = await browser.newPage();
      await page.goto(`${dashboard.url}runs/${runId}`);
      const bars = await page
        .locator(".tl-track .bar-running")
        .evaluateAll((found) => found.map((bar) => bar.getAttribute("title")));
      const legend = await page.locator(".legend").textContent();
      gate.open();
      await runtime.waitForRun(runId, { timeoutMs: 20_000 });
      const done = await runCli(["runs", "show", runId, "--dir", dir]);
      // Assess
      const rows = (stdout: string) =>
        stdout.split("\n").filter((line) => line.includes("cli_one_slot_step#"));
      const note =
        "no outcome yet: running, or waiting for its concurrency slot or rate-limit turn if the step has one";
      expect(rows(waiting.stdout)).toHaveLength(2);
      for (const row of rows(waiting.stdout)) expect(row).toMatch(new RegExp(`running .*${note}$`));
      expect(bars).toEqual([
        expect.stringMatching(new RegExp(`^cli_one_slot_step#0 attempt 1: sent \\S+ ago, ${note}$`)),
        expect.stringMatching(new RegExp(`^cli_one_slot_step#1 attempt 1: sent \\S+ ago, ${note}$`)),
      ]);
      expect(legend).toContain("running (or, for a limited step, waiting for its slot or turn)");
      for (const row of rows(done.stdout)) {
        expect(row).toMatch(/completed .*ran \S+, started \S+ after it was sent$/);
        expect(row).not.toContain(note);
      }
    } finally {
      await browser.close();
      await dashboard.close();
      await runtime.close();
      configureLogging();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("what runs wait for, on Redis", () => {
  const prefix = `tsw-cli-waits-${process.pid}:`;
  const idlePrefix = `tsw-cli-idle-${process.pid}:`;
  /** A workflow that no worker of `idlePrefix` registers (none runs there). */
  const onlyHere = workflow("cli_only_here", async () => "here", { version: "2" });
  let server: RedisServer;
  let runtime: RedisRuntime;
  let client: RedisRuntime;
  let dashboard: ChildProcess | undefined;
  let browser: Browser | undefined;
  const runIds: Record<string, string> = {};

  beforeAll(async () => {
    configureLogging({ level: "silent" });
    server = await startRedisServer();
    runtime = createRedisRuntime({ url: server.url, prefix });
    await runtime.startWorker();
    const read = (runId: string) => runtime.getRun(runId);
    runIds.holder = (await runtime.start(bothLimits, ["acme"])).runId;
    await reach(read, runIds.holder, "suspended");
    runIds.slotHeld = (await runtime.start(bothLimits, ["acme"])).runId;
    runIds.queued = (await runtime.start(bothLimits, ["acme"])).runId;
    client = createRedisRuntime({ url: server.url, prefix: idlePrefix });
    runIds.unregistered = (await client.start(onlyHere, [])).runId;
  });

  afterAll(async () => {
    await browser?.close();
    if (dashboard) await stopDashboard(dashboard);
    await client?.close();
    await runtime?.close();
    await server?.stop();
    configureLogging();
  });

  it("says only the rate limit for a run that holds its slot, read from the slots in Redis", async () => {
    // Act
    const list = await runCli([
      "runs",
      "list",
      "--status",
      "pending",
      "--redis",
      server.url,
      "--prefix",
      prefix,
    ]);
    // Assess
    const row = (label: string) =>
      list.stdout.split("\n").find((line) => line.startsWith(runIds[label] ?? "?"));
    expect(row("slotHeld")).toMatch(new RegExp(`pending .* ${literal(START_OF_BOTH)}$`));
    expect(row("slotHeld")).not.toContain("slot of key");
    expect(row("queued")).toMatch(new RegExp(`${literal(SLOT_OF_BOTH)}, then ${literal(START_OF_BOTH)}$`));
  });

  it("names the workflow and version a pending run without limits needs a worker for", async () => {
    // Act
    const show = await runCli([
      "runs",
      "show",
      runIds.unregistered ?? "",
      "--redis",
      server.url,
      "--prefix",
      idlePrefix,
    ]);
    // Assess
    expect(show.stdout).toMatch(
      /waiting for +a worker that registers workflow cli_only_here version "2" to start it\n/,
    );
  });

  it("shows the same on the dashboard's run page, in a browser", async () => {
    // Prepare
    const started = await startDashboard(["--redis", server.url, "--prefix", prefix]);
    dashboard = started.server;
    browser = await launchChromium();
    const page = await browser.newPage();
    // Act
    await page.goto(`${started.url}runs/${runIds.slotHeld}`);
    const slotHeld = await page.locator(".facts div", { hasText: "Waiting for" }).locator("dd").textContent();
    await page.goto(`${started.url}runs/${runIds.queued}`);
    const queued = await page.locator(".facts div", { hasText: "Waiting for" }).locator("dd").textContent();
    // Assess
    expect(slotHeld).toBe(START_OF_BOTH);
    expect(queued).toBe(`${SLOT_OF_BOTH}, then ${START_OF_BOTH}`);
  });
});

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
