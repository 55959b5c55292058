import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import { MemoryStorage } from "../../lib/adapters/memory/memory-storage.ts";
import { createDashboard, serveDashboard } from "../../lib/cli/dashboard/server.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { startLocal } from "../../lib/testing/index.ts";
import { chargeOneAtATime, declined } from "./fixtures/flow-workflows.ts";
import { type SeededRuns, seedRuns } from "./fixtures/seed.ts";
import {
  approval,
  checkedApproval,
  checkout,
  family,
  gated,
  gateIsWaiting,
  hello,
  openGate,
  reminder,
} from "./fixtures/workflows.ts";
import { REPO_ROOT } from "./run-cli.ts";
import { launchChromium, startDashboard, stopDashboard } from "./support/dashboard-process.ts";

/** The arguments of `tsworkflow dashboard --allow-actions` on the file backend in `dir`. */
const actionsOn = (dir: string, ...args: string[]) => ["--dir", dir, "--allow-actions", ...args];
const DOCS_SCREENSHOT = join(REPO_ROOT, "docs", "dashboard.png");
// docs/dashboard.png is committed: it is replaced only on request (UPDATE_SCREENSHOTS=1) or when missing,
// so that running the tests leaves the tree clean.
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS || !existsSync(DOCS_SCREENSHOT)
    ? DOCS_SCREENSHOT
    : join(tmpdir(), `tsw-dashboard-${process.pid}.png`);

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe.concurrent("the dashboard over HTTP", () => {
  const storage = new MemoryStorage();
  let runId: string;

  beforeAll(async () => {
    configureLogging({ level: "silent" });
    runId = await startLocal(hello, ['<img src=x onerror="alert(1)">'], { storage, timeSkipping: true });
  });

  it("asks for the token on every request, and takes it as ?token= or as a Bearer header", async () => {
    // Prepare
    const app = createDashboard({ storage, token: "s3cret" });
    // Act
    const [none, wrong, query, bearer, api] = await Promise.all([
      app.request("/"),
      app.request("/?token=nope"),
      app.request("/?token=s3cret"),
      app.request(`/runs/${runId}`, { headers: { Authorization: "Bearer s3cret" } }),
      app.request("/api/runs"),
    ]);
    // Assess
    expect([none.status, wrong.status, query.status, bearer.status, api.status]).toEqual([
      401, 401, 200, 200, 401,
    ]);
    expect(await none.text()).toContain("needs its token");
    // Links in the page carry the token, so that clicking around keeps working.
    expect(await query.text()).toContain(`href="/runs/${runId}?token=s3cret"`);
  });

  it("escapes what the runs hold, and forbids inline code it did not write", async () => {
    // Prepare
    const app = createDashboard({ storage });
    // Act
    const response = await app.request(`/runs/${runId}`);
    const page = await response.text();
    // Assess
    expect(page).not.toContain('<img src=x onerror="alert(1)">');
    expect(page).toContain("&lt;img src=x onerror=");
    expect(response.headers.get("content-security-policy")).toMatch(/script-src 'nonce-[^']+'/);
  });

  it("refuses actions when read-only, from another site, or when they are not sent as JSON", async () => {
    // Prepare
    const readOnly = createDashboard({ storage });
    const acting = createDashboard({
      storage,
      allowActions: true,
      actions: { cancel: async () => {}, retry: async () => {} },
    });
    const post = (headers: Record<string, string>) => ({ method: "POST", headers, body: "{}" });
    // Act
    const [refused, crossSite, form, accepted] = await Promise.all([
      readOnly.request(`/api/runs/${runId}/cancel`, post({ "Content-Type": "application/json" })),
      acting.request(
        `http://localhost/api/runs/${runId}/cancel`,
        post({ "Content-Type": "application/json", Origin: "https://evil.example" }),
      ),
      acting.request(
        `/api/runs/${runId}/cancel`,
        post({ "Content-Type": "application/x-www-form-urlencoded" }),
      ),
      acting.request(
        `http://localhost/api/runs/${runId}/cancel`,
        post({ "Content-Type": "application/json", Origin: "http://localhost" }),
      ),
    ]);
    // Assess
    expect([refused.status, crossSite.status, form.status, accepted.status]).toEqual([403, 403, 415, 200]);
    expect(((await refused.json()) as { error: string }).error).toContain("--allow-actions");
  });

  it("refuses a filter on a status that does not exist, naming the statuses, rather than list every run", async () => {
    // Prepare
    const app = createDashboard({ storage });
    // Act
    const [api, page, known] = await Promise.all([
      app.request("/api/runs?status=bogus"),
      app.request("/?status=bogus"),
      app.request("/api/runs?status=completed"),
    ]);
    // Assess
    expect([api.status, page.status, known.status]).toEqual([400, 400, 200]);
    expect(await api.json()).toEqual({
      error:
        'Unknown status "bogus": use pending, running, suspended, completed, failed, cancelled, continued.',
    });
    const html = await page.text();
    expect(html).toContain("Bad filter");
    expect(html).toContain(
      "Unknown status &quot;bogus&quot;: use pending, running, suspended, completed, failed, cancelled, continued.",
    );
    expect(html).not.toContain(runId);
  });

  it("answers 404 for an unknown or malformed run id", async () => {
    // Prepare
    const app = createDashboard({ storage });
    // Act
    const [unknown, malformed, api] = await Promise.all([
      app.request("/runs/run_unknown"),
      app.request("/runs/not%20an%20id"),
      app.request("/api/runs/run_unknown"),
    ]);
    // Assess
    expect([unknown.status, malformed.status, api.status]).toEqual([404, 404, 404]);
    expect(await unknown.text()).toContain("No run with id &quot;run_unknown&quot;");
  });

  it("shows what is stored for a run and not taken in yet, beside what it waits for", async () => {
    // Prepare: a run waiting for a webhook; with no app running, a cancellation is stored for the next one.
    const dir = mkdtempSync(join(tmpdir(), "tsw-dash-stored-"));
    const app = new FileStorage({ dir });
    const waiting = await startLocal(approval, ["o-7"], { storage: app });
    await app.close();
    const reader = new FileStorage({ dir, readOnly: true });
    try {
      await reader.putOutcome({
        runId: waiting,
        stepId: "$cancel",
        attempt: 1,
        recordedAt: new Date().toISOString(),
        ok: true,
        result: { reason: "order withdrawn" },
      });
      const dashboard = createDashboard({ storage: reader });
      // Act
      const page = await (await dashboard.request(`/runs/${waiting}`)).text();
      const api = await (await dashboard.request(`/api/runs/${waiting}`)).json();
      // Assess
      expect(page).toMatch(/Stored for the app.*a cancellation \(&quot;order withdrawn&quot;\) since /s);
      expect(api).toMatchObject({
        run: { status: "suspended" },
        storedRequests: [{ kind: "cancel", description: expect.stringContaining('("order withdrawn")') }],
      });
    } finally {
      await reader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves an app's own runtime and cancels runs through it", async () => {
    // Prepare
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const { runId: sleeping } = await runtime.start(reminder, ["in-app"]);
    await waitFor(async () => (await runtime.getRun(sleeping))?.status === "suspended", "the sleep");
    const app = createDashboard({
      storage: runtime,
      allowActions: true,
      actions: {
        cancel: (id, reason) => runtime.cancelRun(id, reason),
        retry: (id) => runtime.retryRun(id),
      },
    });
    try {
      // Act
      const page = await app.request(`/runs/${sleeping}`);
      const response = await app.request(`/api/runs/${sleeping}/cancel`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ reason: "closed account" }),
      });
      const run = await runtime.waitForRun(sleeping, { timeoutMs: 10_000 });
      // Assess
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('data-id="sleep#0"');
      expect(response.status).toBe(200);
      expect(run.status).toBe("cancelled");
      expect((await runtime.getEvents(sleeping)).at(-1)).toMatchObject({ reason: "closed account" });
    } finally {
      await runtime.close();
    }
  });

  it("resumes a run waiting for a webhook on POST /hooks/<token>, once, and shows the wait and a child run", async () => {
    // Prepare
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const { runId } = await runtime.start(approval, ["order-7"]);
    const { runId: parentId } = await runtime.start(family, ["kid"]);
    await waitFor(async () => (await runtime.getRun(runId))?.status === "suspended", "the webhook wait");
    const token = (await runtime.getEvents(runId)).find((event) => event.type === "hook_created")?.token;
    const app = createDashboard({
      storage: runtime,
      token: "dashboard-token",
      webhooks: { sendEvent: (...args) => runtime.sendEvent(...args) },
    });
    const call = (path: string) =>
      app.request(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ approved: true }),
      });
    try {
      // Act
      const first = await call(`/hooks/${token}`);
      const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
      const [again, forged] = await Promise.all([call(`/hooks/${token}`), call(`/hooks/${runId}.forged`)]);
      const parent = await runtime.waitForRun(parentId, { timeoutMs: 10_000 });
      const runPage = await (await app.request(`/runs/${runId}?token=dashboard-token`)).text();
      const parentPage = await (await app.request(`/runs/${parentId}?token=dashboard-token`)).text();
      // Assess
      expect([first.status, again.status, forged.status]).toEqual([202, 409, 404]);
      expect(run).toMatchObject({ status: "completed", result: "approved order-7" });
      expect(runPage).toMatch(
        /<div class="tl-row" data-id="[^"]+" data-kind="hook" data-status="completed">/,
      );
      expect(runPage).toContain('data-kind="received"');
      expect(parent).toMatchObject({ status: "completed", result: "HELLO KID" });
      const childRunId = (await runtime.getEvents(parentId)).find(
        (event) => event.type === "child_started",
      )?.childRunId;
      expect(parentPage).toContain(`href="/runs/${childRunId}?token=dashboard-token"`);
    } finally {
      await runtime.close();
    }
  });

  it("shows a wait whose event's payload failed its schema as a failed bar, with the schema's error", async () => {
    // Prepare
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const { runId } = await runtime.start(checkedApproval, []);
    await runtime.idle();
    await runtime.sendEvent(runId, "approval", { ok: "yes" });
    await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    const app = createDashboard({ storage: runtime });
    try {
      // Act
      const page = await (await app.request(`/runs/${runId}`)).text();
      // Assess
      expect(page).toMatch(/<div class="tl-row" data-id="approval#0" data-kind="hook" data-status="failed">/);
      expect(page).toMatch(
        /class="bar bar-failed" data-kind="failed"[^>]* title="approval#0: failed after \S+ · EventPayloadError: The payload of event &quot;approval&quot; does not match its schema: ok: /,
      );
      expect(page).not.toContain('data-kind="received"');
    } finally {
      await runtime.close();
    }
  });

  it("counts only the newest runs past scanLimit, and finds older ones through the store's filters", async () => {
    // Prepare
    const many = new MemoryStorage();
    const failed = await startLocal(checkout, [1], { storage: many, timeSkipping: true });
    for (const name of ["a", "b", "c"])
      await startLocal(hello, [name], { storage: many, timeSkipping: true });
    const app = createDashboard({ storage: many, scanLimit: 2 });
    // Act
    const all = (await (await app.request("/api/runs")).json()) as {
      capped: boolean;
      counts: { completed: number };
    };
    const onlyFailed = (await (await app.request("/api/runs?status=failed")).json()) as {
      runs: { runId: string }[];
    };
    const page = await (await app.request("/")).text();
    // Assess
    expect(all).toMatchObject({ capped: true, counts: { completed: 2 } });
    expect(onlyFailed.runs.map((run) => run.runId)).toEqual([failed]);
    expect(page).toContain("<span>completed</span><b>2+</b>");
  });

  it("pages through the runs with next and previous links, each run on one page", async () => {
    // Prepare
    const many = new MemoryStorage();
    for (const name of ["a", "b", "c", "d", "e"])
      await startLocal(hello, [name], { storage: many, timeSkipping: true });
    const newestFirst = (await many.listRuns()).runs.map((run) => run.runId);
    const app = createDashboard({ storage: many, token: "t" });
    const shown = (page: string) => [...page.matchAll(/data-run-id="([^"]+)"/g)].map((match) => match[1]);
    const link = (page: string, rel: "next" | "prev") =>
      new RegExp(`rel="${rel}" href="([^"]+)"`).exec(page)?.[1]?.replaceAll("&amp;", "&");
    // Act
    const first = await (await app.request("/?limit=2&token=t")).text();
    const second = await (await app.request(link(first, "next") as string)).text();
    const third = await (await app.request(link(second, "next") as string)).text();
    const back = await (await app.request(link(third, "prev") as string)).text();
    // Assess
    expect([...shown(first), ...shown(second), ...shown(third)]).toEqual(newestFirst);
    expect(newestFirst).toHaveLength(5);
    expect(link(first, "prev")).toBeUndefined();
    expect(link(third, "next")).toBeUndefined();
    expect(shown(back)).toEqual(shown(second));
    expect(second).toContain("Runs 3-4 of 5 matching");
  });

  it("answers only to its own address when it listens on loopback", async () => {
    // Prepare
    const dashboard = await serveDashboard({ storage, port: 0 });
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          { host: "127.0.0.1", port: dashboard.port, path: "/", headers: { Host: host } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
    try {
      // Act
      const [own, rebound] = await Promise.all([
        status(`127.0.0.1:${dashboard.port}`),
        status(`attacker.example:${dashboard.port}`),
      ]);
      // Assess
      expect(dashboard.url).toBe(`http://127.0.0.1:${dashboard.port}/`);
      expect([own, rebound]).toEqual([200, 403]);
    } finally {
      await dashboard.close();
    }
  });
});

describe("the dashboard in a browser", () => {
  let dir: string;
  let runs: SeededRuns;
  let browser: Browser;
  let server: ChildProcess;
  let url: string;
  let page: Page;

  beforeAll(async () => {
    configureLogging({ level: "silent" });
    dir = mkdtempSync(join(tmpdir(), "tsw-dashboard-"));
    runs = await seedRuns(dir);
    // `tsworkflow dashboard` itself, as a user starts it.
    ({ server, url } = await startDashboard(
      actionsOn(dir, "--workflows", "tests/cli/fixtures/workflows.ts"),
    ));
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(15_000);
  });

  afterAll(async () => {
    await browser?.close();
    if (server) await stopDashboard(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const rowIds = () =>
    page
      .locator("table.runs tbody tr")
      .evaluateAll((rows) => rows.map((row) => row.getAttribute("data-run-id")));

  it("lists the runs with their counts per status, and filters them by status, workflow and id", async () => {
    // Act
    await page.goto(url);
    const all = await rowIds();
    const failedCount = await page.locator('.count[data-status="failed"] b').textContent();
    await page.selectOption('select[name="status"]', "failed");
    await page.waitForURL(/status=failed/);
    const failed = await rowIds();
    await page.goto(url);
    await page.selectOption('select[name="workflow"]', "hello");
    await page.waitForURL(/workflow=hello/);
    const hellos = await rowIds();
    await page.goto(url);
    await page.fill('input[name="q"]', runs.onboarding.slice(-8));
    await page.press('input[name="q"]', "Enter");
    await page.waitForURL(/q=/);
    const found = await rowIds();
    // Assess
    expect(all).toHaveLength(7);
    expect(all[0]).toBe(runs.onboarding);
    expect(failedCount).toBe("2");
    expect(failed.sort()).toEqual([runs.failed, runs.failedToo].sort());
    expect(hellos.sort()).toEqual([...runs.hellos].sort());
    expect(found).toEqual([runs.onboarding]);
  });

  it("opens a run and shows its steps and sleep on the timeline, with the retries", async () => {
    // Act
    await page.goto(url);
    await page.click(`a[href="/runs/${runs.onboarding}"]`);
    await page.waitForURL(new RegExp(`/runs/${runs.onboarding}$`));
    const rows = await page
      .locator(".timeline .tl-row[data-id]")
      .evaluateAll((elements) => elements.map((element) => element.getAttribute("data-id")));
    const syncCrm = page.locator('.tl-row[data-id="sync_crm#0"] .bar');
    const kinds = await syncCrm.evaluateAll((bars) => bars.map((bar) => bar.getAttribute("data-kind")));
    const eventRows = await page.locator("table.events tbody tr").count();
    await page.screenshot({ path: SCREENSHOT });
    // Assess
    expect(rows).toEqual([
      "send_welcome_email#0",
      "sleep#0",
      "create_profile#0",
      "sync_crm#0",
      "notify_team#0",
    ]);
    expect(kinds).toEqual(["retrying", "retry-wait", "retrying", "retry-wait", "completed"]);
    expect(await page.locator('.tl-row[data-id="sleep#0"] .bar').getAttribute("data-kind")).toBe("slept");
    expect(await page.locator('.tl-row[data-id="sync_crm#0"] .tl-attempts').textContent()).toBe("3 attempts");
    expect(await page.locator("#run-result pre").textContent()).toContain('"contact": "crm-user_123"');
    expect(eventRows).toBe(20);
    expect(existsSync(SCREENSHOT)).toBe(true);
  });

  it("shows a failed run's error with its stack", async () => {
    // Act
    await page.goto(`${url}runs/${runs.failed}`);
    // Assess
    expect(await page.locator("#run-error .error-line").textContent()).toBe(
      "FatalError: card declined for 42 EUR",
    );
    expect(await page.locator("#run-error .stack").textContent()).toMatch(/\n\s+at /);
    expect(await page.locator('.tl-row[data-id="charge_card#0"] .bar').getAttribute("data-kind")).toBe(
      "failed",
    );
  });

  it("refreshes an active run's page as it goes on, beside the app that runs it", async () => {
    // Prepare: this process is the app, holding the directory; the dashboard reads it beside us.
    const storage = new FileStorage({ dir });
    const runtime = new LocalRuntime({ storage, recover: false });
    try {
      const { runId } = await runtime.start(gated, ["live"]);
      await waitFor(() => gateIsWaiting("live"), "the gated step");
      await page.goto(`${url}runs/${runId}`);
      const before = await page.locator("#live").getAttribute("data-status");
      const runningBar = await page
        .locator('.tl-row[data-id="wait_for_gate#0"] .bar')
        .getAttribute("data-kind");
      // Act
      openGate("live");
      await runtime.waitForRun(runId, { timeoutMs: 10_000 });
      await page.locator('#live[data-status="completed"]').waitFor();
      // Assess
      expect(before).toBe("running");
      expect(runningBar).toBe("running");
      expect(page.url()).toBe(`${url}runs/${runId}`);
      expect(await page.locator('.tl-row[data-id="greet#0"] .bar').getAttribute("data-kind")).toBe(
        "completed",
      );
    } finally {
      await runtime.close();
    }
  });

  it("cancels a sleeping run from its page", async () => {
    // Prepare
    await page.goto(`${url}runs/${runs.sleeping}`);
    const sleepingBefore = await page.locator('.tl-row[data-id="sleep#0"] .bar').getAttribute("data-kind");
    page.once("dialog", (dialog) => void dialog.accept());
    // Act
    await page.fill("#cancel-reason", "customer left");
    await page.click('button[data-action="cancel"]');
    await page.locator('#live[data-status="cancelled"]').waitFor();
    // Assess
    expect(sleepingBefore).toBe("sleeping");
    expect(await page.locator("#flash").textContent()).toContain("cancelled");
    expect(await page.locator('button[data-action="cancel"]').isDisabled()).toBe(true);
    expect(await page.locator("table.events tbody tr").last().getAttribute("data-type")).toBe(
      "workflow_cancelled",
    );
    const events = (await (await fetch(`${url}api/runs/${runs.sleeping}`)).json()) as {
      events: WorkflowEvent[];
    };
    expect(events.events.at(-1)).toMatchObject({ type: "workflow_cancelled", reason: "customer left" });
  });

  it("retries a failed run from its page", async () => {
    // Prepare
    await page.goto(`${url}runs/${runs.failedToo}`);
    // Act
    await page.click('button[data-action="retry"]');
    await page.locator('table.events tbody tr[data-type="workflow_retried"]').waitFor();
    // Assess: the card is declined again, so the run fails again, at its second attempt.
    await page.locator('#live[data-status="failed"]').waitFor();
    expect(await page.locator('.tl-row[data-id="charge_card#0"] .tl-attempts').textContent()).toBe(
      "2 attempts",
    );
  });

  it("says that a retried run waits for the app when no app runs it, and shows its stored status without the live dot", async () => {
    // Prepare: a dashboard without --workflows, and no app owning the directory.
    const bare = await startDashboard(actionsOn(dir));
    try {
      await page.goto(`${bare.url}runs/${runs.failed}`);
      // Act
      await page.click('button[data-action="retry"]');
      await page.locator("#flash", { hasText: "Retried" }).waitFor();
      await page.locator('#live[data-status="running"]').waitFor();
      // Assess: the retry is stored; nothing runs the run until the app starts.
      const flash = await page.locator("#flash").textContent();
      expect(flash).toContain(`It goes on from its failed step when your app next starts on ${dir}`);
      expect(flash).not.toContain("running now");
      expect(await page.locator("#live .live-dot").count()).toBe(0);
      expect(await page.locator("#live .idle-note").textContent()).toBe(
        `stored status; no app owns ${dir} now: your app carries the run on when it next starts there`,
      );
      expect(bare.output()).toContain(
        `note: no app owns ${dir} now: cancellations and retries are stored and carried out when your app starts there (or start the dashboard with --workflows to run them here).`,
      );
    } finally {
      await stopDashboard(bare.server);
    }
  });

  it("says that a retried run of a limited workflow waits for its slot, and shows it pending and live while the app runs, until it completes", async () => {
    // Prepare: this process is the app; run A failed, and B holds the key's only slot.
    const storage = new FileStorage({ dir });
    const runtime = new LocalRuntime({ storage, recover: false });
    try {
      declined.add("dash-a");
      const a = (await runtime.start(chargeOneAtATime, ["initech", "dash-a"])).runId;
      expect((await runtime.waitForRun(a, { timeoutMs: 10_000 })).status).toBe("failed");
      declined.clear();
      const b = (await runtime.start(chargeOneAtATime, ["initech", "dash-b"])).runId;
      await waitFor(async () => (await runtime.getRun(b))?.status === "suspended", "B to hold the slot");
      await page.goto(`${url}runs/${a}`);

      // Act
      await page.click('button[data-action="retry"]');
      await page.locator("#flash", { hasText: "Retried" }).waitFor();
      await page.locator('#live[data-status="pending"]').waitFor();

      // Assess
      const slot = "a run concurrency slot of key run:cli_charge_one_at_a_time:initech (at most 1 at once)";
      expect(await page.locator("#flash").textContent()).toMatch(
        new RegExp(
          `It waits for ${slot.replace(/[()]/g, "\\$&")}: your app \\(process \\d+.*\\) goes on with it from its failed step once it has one\\.`,
        ),
      );
      expect(await page.locator("#live .live-dot").count()).toBe(1);
      expect(await page.locator("#live .facts").textContent()).toContain(`Waiting for${slot}`);

      // Act: B ends; A takes the slot and goes on.
      await runtime.sendEvent(b, "go-initech", null);
      await page.locator('#live[data-status="suspended"]').waitFor();
      await runtime.sendEvent(a, "go-initech", null);
      await page.locator('#live[data-status="completed"]').waitFor();

      // Assess
      expect(await page.locator("#run-result pre").textContent()).toBe('"charged dash-a"');
    } finally {
      await runtime.close();
    }
  });
});
