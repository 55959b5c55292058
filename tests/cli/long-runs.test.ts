import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { map } from "../../lib/core/map.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { runCli } from "./run-cli.ts";
import { launchChromium, startDashboard, stopDashboard } from "./support/dashboard-process.ts";
import { printedSeqs, seqRange } from "./support/event-rows.ts";

const ITEMS = 2_000;
const double = step("cli_long_double", async (n: number) => n * 2);
/** A `map` of 2,000 one-step items: 2,000 timeline rows, 4,002 events. */
const longMap = workflow("cli_long_map", async (count: number) =>
  map(
    Array.from({ length: count }, (_, index) => index),
    (index) => double(index),
    { concurrency: 50 },
  ),
);

let dir: string;
let runId: string;

beforeAll(async () => {
  configureLogging({ level: "silent" });
  dir = mkdtempSync(join(tmpdir(), "tsw-cli-long-"));
  const runtime = new LocalRuntime({ dir });
  try {
    runId = (await runtime.start(longMap, [ITEMS])).runId;
    await runtime.waitForRun(runId, { timeoutMs: 60_000 });
  } finally {
    await runtime.close();
    configureLogging();
  }
}, 90_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("runs show of a run with thousands of steps", () => {
  it("prints the first and last 50 rows of its timeline and how many are between, and every row with --all", async () => {
    // Act
    const [ends, all] = await Promise.all([
      runCli(["runs", "show", runId, "--dir", dir]),
      runCli(["runs", "show", runId, "--dir", dir, "--all"]),
    ]);
    // Assess
    const stepRows = (stdout: string) =>
      stdout.split("\n").filter((line) => /^ {2}cli_long_double#\d+ /.test(line));
    expect(ends.code).toBe(0);
    expect(stepRows(ends.stdout)).toHaveLength(100);
    const lines = ends.stdout.split("\n");
    const gap = lines.indexOf(`  … ${ITEMS - 100} more rows (--all prints every row)`);
    expect(gap).toBeGreaterThan(0);
    expect(lines[gap - 1]).toMatch(/^ {2}cli_long_double#49 /);
    expect(stepRows(lines.slice(gap).join("\n"))).toHaveLength(50);
    expect(stepRows(all.stdout)).toHaveLength(ITEMS);
    expect(all.stdout).not.toContain("more rows");
  });
});

describe("runs events of a run with thousands of events", () => {
  const EVENTS = 2 * ITEMS + 2;

  it("prints the first and last 50 events and how many are between, and every event with --all", async () => {
    // Act
    const [ends, all] = await Promise.all([
      runCli(["runs", "events", runId, "--dir", dir]),
      runCli(["runs", "events", runId, "--dir", dir, "--all"]),
    ]);
    // Assess
    expect(ends.code).toBe(0);
    expect(printedSeqs(ends.stdout)).toEqual([...seqRange(1, 50), ...seqRange(EVENTS - 49, EVENTS)]);
    const lines = ends.stdout.split("\n");
    const gap = lines.indexOf(
      `… ${EVENTS - 100} more events (--all prints every event, --after <seq> --limit <n> a window)`,
    );
    expect(lines[gap - 1]).toMatch(/^50 /);
    expect(lines[gap + 1]).toMatch(new RegExp(`^${EVENTS - 49} `));
    expect(ends.stderr).toBe("");
    expect(all.code).toBe(0);
    expect(printedSeqs(all.stdout)).toEqual(seqRange(1, EVENTS));
    expect(all.stdout).not.toContain("more events");
  });

  it("prints a window with --after and --limit, and the flag to pass for the next one", async () => {
    // Act
    const [window, rest, past, none, noneText] = await Promise.all([
      runCli(["runs", "events", runId, "--dir", dir, "--after", "1000", "--limit", "150"]),
      runCli(["runs", "events", runId, "--dir", dir, "--after", String(EVENTS - 3)]),
      runCli(["runs", "events", runId, "--dir", dir, "--after", String(EVENTS + 5)]),
      runCli(["runs", "events", runId, "--dir", dir, "--limit", "0", "--json"]),
      runCli(["runs", "events", runId, "--dir", dir, "--limit", "0"]),
    ]);
    // Assess: a window asked for with --limit is printed whole; its AFTER column counts from the run's start.
    expect(window.code).toBe(0);
    expect(printedSeqs(window.stdout)).toEqual(seqRange(1001, 1150));
    expect(window.stdout).not.toContain("+0ms ");
    expect(window.stderr.trim()).toBe("More events: pass --after 1150 --limit 150 for the next ones.");
    expect(printedSeqs(rest.stdout)).toEqual(seqRange(EVENTS - 2, EVENTS));
    expect(rest.stderr).toBe("");
    expect(past.code).toBe(0);
    expect(past.stdout.trim()).toBe(`No events after seq ${EVENTS + 5}: the log has ${EVENTS}.`);
    expect(JSON.parse(none.stdout)).toEqual([]);
    expect(none.stderr).toBe("");
    expect(noneText.stdout.trim()).toBe(`--limit 0 shows no events: the log has ${EVENTS}.`);
  });

  it("prints the whole log as JSON, and only the window with --after and --limit", async () => {
    // Act
    const [whole, window] = await Promise.all([
      runCli(["runs", "events", runId, "--dir", dir, "--json"]),
      runCli(["runs", "events", runId, "--dir", dir, "--json", "--after", "10", "--limit", "5"]),
    ]);
    // Assess
    const seqs = (stdout: string) => (JSON.parse(stdout) as WorkflowEvent[]).map((event) => event.seq);
    expect(seqs(whole.stdout)).toEqual(seqRange(1, EVENTS));
    expect(seqs(window.stdout)).toEqual(seqRange(11, 15));
    // The hint goes to standard error: the JSON on standard output stays whole.
    expect(window.stderr.trim()).toBe("More events: pass --after 15 --limit 5 for the next ones.");
  });

  it("refuses an --after or --limit that is not a whole number ≥ 0 as a usage error naming the flag", async () => {
    // Act
    const results = await Promise.all(
      [
        ["--after", "abc"],
        ["--after", "-1"],
        ["--limit", "1.5"],
        ["--limit", "-3"],
      ].map((flag) => runCli(["runs", "events", runId, "--dir", dir, ...flag])),
    );
    // Assess
    expect(results.map((result) => result.code)).toEqual([2, 2, 2, 2]);
    expect(results[0]?.stderr).toContain(
      "error: option '--after <seq>' argument 'abc' is invalid. --after must be a whole number ≥ 0.",
    );
    expect(results[1]?.stderr).toContain("--after must be a whole number ≥ 0.");
    expect(results[2]?.stderr).toContain(
      "error: option '--limit <n>' argument '1.5' is invalid. --limit must be a whole number ≥ 0.",
    );
    expect(results[3]?.stderr).toContain("--limit must be a whole number ≥ 0.");
    expect(results.map((result) => result.stdout)).toEqual(["", "", "", ""]);
  });
});

describe("the dashboard's page of a run with thousands of steps, in a browser", () => {
  let server: ChildProcess;
  let url: string;
  let browser: Browser;

  beforeAll(async () => {
    ({ server, url } = await startDashboard(["--dir", dir]));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    if (server) await stopDashboard(server);
  });

  it("shows the first and last 100 timeline rows and events, how many are between, and all of them on request", async () => {
    // Prepare
    const page = await browser.newPage();
    page.setDefaultTimeout(60_000);
    const counts = async () => ({
      rows: await page.locator(".timeline .tl-row[data-id]").count(),
      events: await page.locator("table.events tbody tr[data-seq]").count(),
    });
    // Act
    const response = await page.goto(`${url}runs/${runId}`);
    const html = (await response?.text()) ?? "";
    const ends = await counts();
    const rowGap = await page.locator(".tl-gap .tl-label").textContent();
    const eventGap = await page.locator("tr.events-gap").textContent();
    const eventsHeading = await page.locator("#events-section h2").textContent();
    await page.locator("tr.events-gap a.show-all").click();
    await page.waitForURL(/all=1/);
    const all = await counts();
    const gapsLeft = await page.locator(".tl-gap, tr.events-gap").count();
    // Assess
    expect(ends).toEqual({ rows: 200, events: 200 });
    expect(rowGap?.trim()).toBe(`… ${ITEMS - 200} more rows`);
    expect(eventGap?.trim()).toBe(`… ${2 * ITEMS + 2 - 200} more events · show all ${2 * ITEMS + 2}`);
    expect(eventsHeading).toBe(`Events (${2 * ITEMS + 2})`);
    // Its ends only: the whole page of this run is about 4 MB.
    expect(html.length).toBeLessThan(400_000);
    expect(all).toEqual({ rows: ITEMS, events: 2 * ITEMS + 2 });
    expect(gapsLeft).toBe(0);
  }, 120_000);

  it("gives a window of the run's events through GET /api/runs/<id>?after=&limit=, and the whole log without", async () => {
    // Prepare
    type Detail = {
      run: { runId: string };
      waitingFor: string[];
      events: WorkflowEvent[];
      nextAfter?: number;
    };
    const get = async (query: string) => {
      const response = await fetch(`${url}api/runs/${runId}${query}`);
      return { status: response.status, body: (await response.json()) as Detail & { error?: string } };
    };
    // Act
    const [whole, window, last, none, bad, negative] = await Promise.all([
      get(""),
      get("?after=100&limit=20"),
      get(`?after=${2 * ITEMS}`),
      get("?limit=0"),
      get("?after=abc"),
      get("?limit=-1"),
    ]);
    // Assess
    expect(whole.status).toBe(200);
    expect(Object.keys(whole.body)).toEqual(["run", "waitingFor", "events", "timeline"]);
    expect(whole.body.events).toHaveLength(2 * ITEMS + 2);
    expect(window.body.events.map((event) => event.seq)).toEqual(seqRange(101, 120));
    expect(window.body.nextAfter).toBe(120);
    expect(window.body.run.runId).toBe(runId);
    expect(last.body.events.map((event) => event.seq)).toEqual([2 * ITEMS + 1, 2 * ITEMS + 2]);
    expect(last.body).not.toHaveProperty("nextAfter");
    expect(none.body.events).toEqual([]);
    expect(none.body.nextAfter).toBe(0);
    expect(none.body.waitingFor).toEqual([]);
    expect(bad).toEqual({
      status: 400,
      body: { error: 'after must be a whole number ≥ 0, e.g. after=100; got "abc".' },
    });
    expect(negative).toEqual({
      status: 400,
      body: { error: 'limit must be a whole number ≥ 0, e.g. limit=100; got "-1".' },
    });
  });
});
