import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configureLogging } from "../../lib/core/logger.ts";
import { map } from "../../lib/core/map.ts";
import { step } from "../../lib/core/step.ts";
import { workflow } from "../../lib/core/workflow.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { runCli } from "./run-cli.ts";
import { launchChromium, startDashboard, stopDashboard } from "./support/dashboard-process.ts";

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
});
