import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStorage } from "../../lib/adapters/memory/memory-storage.ts";
import { DASHBOARD_SCRIPT } from "../../lib/cli/dashboard/assets.ts";
import { createDashboard } from "../../lib/cli/dashboard/server.ts";
import { configureLogging } from "../../lib/core/logger.ts";
import { LocalRuntime } from "../../lib/runtimes/embedded.ts";
import { reminder } from "./fixtures/workflows.ts";
import { launchChromium } from "./support/dashboard-process.ts";

/** Every URL a page sends the browser to: links, form actions, sources (unescaped). */
const urlsOf = (page: string) =>
  [...page.matchAll(/\s(?:href|action|src)="([^"]*)"/g)].map((match) =>
    (match[1] ?? "").replaceAll("&amp;", "&"),
  );
/** Those that stay in the app (not the favicon's data: URL). */
const internal = (page: string) => urlsOf(page).filter((url) => !url.startsWith("data:"));

describe("the dashboard mounted under a path of your own hono app", () => {
  const runtime = new LocalRuntime({ storage: new MemoryStorage() });
  let runId: string;

  beforeAll(async () => {
    configureLogging({ level: "silent" });
    ({ runId } = await runtime.start(reminder, ["mounted"], { idempotencyKey: "schedule:nightly:1" }));
  });
  afterAll(() => runtime.close());

  const hostApp = (mount: string) => {
    const app = new Hono();
    app.get("/", (c) => c.text("the host app's home"));
    app.route(
      mount,
      createDashboard({
        storage: runtime,
        allowActions: true,
        actions: {
          cancel: (id, reason) => runtime.cancelRun(id, reason),
          retry: (id) => runtime.retryRun(id),
        },
        schedules: { list: async () => [{ name: "nightly", paused: false, lastTick: 0 }] },
        token: "s3cret",
      }),
    );
    return app;
  };

  it("links every page, form and script request under the mount, and cancels through it", async () => {
    // Prepare
    const app = hostApp("/admin/workflows");
    const get = (path: string) => app.request(`/admin/workflows${path}?token=s3cret`);
    // Act
    const [runs, run, schedules] = await Promise.all([get(""), get(`/runs/${runId}`), get("/schedules")]);
    const pages = { runs: await runs.text(), run: await run.text(), schedules: await schedules.text() };
    // The page's script posts to `base + "/api/runs/…"`, base being the body's data-base.
    const base = pages.run.match(/<body[^>]* data-base="([^"]*)"/)?.[1];
    const cancel = await app.request(`${base}/api/runs/${runId}/cancel`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer s3cret" },
      body: JSON.stringify({ reason: "mounted" }),
    });
    // Assess
    expect([runs.status, run.status, schedules.status]).toEqual([200, 200, 200]);
    for (const page of Object.values(pages)) {
      expect(internal(page).length).toBeGreaterThan(2);
      for (const url of internal(page)) expect(url).toMatch(/^\/admin\/workflows(\/|\?|$)/);
    }
    expect(internal(pages.runs)).toContain(`/admin/workflows/runs/${runId}?token=s3cret`);
    expect(internal(pages.runs)).toContain("/admin/workflows?status=pending&token=s3cret");
    expect(internal(pages.runs)).toContain("/admin/workflows");
    expect(internal(pages.schedules)).toContain(`/admin/workflows/runs/${runId}?token=s3cret`);
    expect(base).toBe("/admin/workflows");
    // Its only fetches: the page's own URL (the live refresh) and the actions under base.
    expect([...DASHBOARD_SCRIPT.matchAll(/fetch\(([^,]*),/g)].map((match) => match[1])).toEqual([
      "location.href",
      'base + "/api/runs/" + encodeURIComponent(runId) + "/" + action',
    ]);
    expect(cancel.status).toBe(200);
    expect((await runtime.waitForRun(runId, { timeoutMs: 10_000 })).status).toBe("cancelled");
  });

  it("sends the mount with a trailing slash to the runs page, and answers the mount's API in JSON", async () => {
    // Prepare
    const app = hostApp("/admin/workflows");
    // Act
    const slash = await app.request("/admin/workflows/?token=s3cret&status=failed");
    const headSlash = await app.request("/admin/workflows/?token=s3cret", { method: "HEAD" });
    const unauthorized = await app.request("/admin/workflows/api/runs");
    const badFilter = await app.request("/admin/workflows/api/runs?status=nope&token=s3cret");
    const home = await app.request("/");
    // Assess
    expect(slash.status).toBe(308);
    expect(slash.headers.get("location")).toBe("/admin/workflows?token=s3cret&status=failed");
    expect(headSlash.status).toBe(308);
    expect(headSlash.headers.get("location")).toBe("/admin/workflows?token=s3cret");
    expect(unauthorized.status).toBe(401);
    expect(await unauthorized.json()).toMatchObject({ error: expect.stringContaining("needs its token") });
    expect(badFilter.status).toBe(400);
    expect(await badFilter.json()).toMatchObject({ error: expect.stringContaining('Unknown status "nope"') });
    expect(await home.text()).toBe("the host app's home");
  });

  it("finds a mount with parameters, nested in another app, from the request's own path", async () => {
    // Prepare
    const tenants = new Hono();
    tenants.route("/:tenant/workflows", hostApp("/ops"));
    const app = new Hono();
    app.route("/t", tenants);
    // Act
    const page = await (await app.request(`/t/acme/workflows/ops/runs/${runId}?token=s3cret`)).text();
    // Assess
    expect(internal(page)).toContain("/t/acme/workflows/ops?token=s3cret");
    for (const url of internal(page)) expect(url).toMatch(/^\/t\/acme\/workflows\/ops(\/|\?|$)/);
    expect(page).toContain('data-base="/t/acme/workflows/ops"');
  });

  it("goes from the runs page to a run and cancels it in a browser, all under the mount", async () => {
    // Prepare
    const { runId: sleeping } = await runtime.start(reminder, ["browser"]);
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const listening = serve(
        { fetch: hostApp("/admin/workflows").fetch, port: 0, hostname: "127.0.0.1" },
        () => resolve(listening),
      );
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      page.once("dialog", (dialog) => void dialog.accept());
      // Act
      await page.goto(`${base}/admin/workflows/?token=s3cret`);
      await page.click(`tr[data-run-id="${sleeping}"] a.run-link`);
      await page.locator('#live[data-status="suspended"]').waitFor();
      await page.click('button[data-action="cancel"]');
      await page.locator('#live[data-status="cancelled"]').waitFor();
      // Assess
      expect(page.url()).toBe(`${base}/admin/workflows/runs/${sleeping}?token=s3cret`);
      expect(await page.locator("#flash").textContent()).toContain("cancelled");
      expect((await runtime.getRun(sleeping))?.status).toBe("cancelled");
    } finally {
      await browser.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
