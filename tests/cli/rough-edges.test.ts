import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import { MemoryStorage } from "../../lib/adapters/memory/memory-storage.ts";
import { createDashboard } from "../../lib/cli/dashboard/server.ts";
import { freePort } from "../../lib/redis/redis-server.ts";
import { runCli } from "./run-cli.ts";

let project: string;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), "tsw-cli-project-"));
});

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe("a --dir that holds no tsworkflow data", () => {
  it("gets the hint a missing directory gets, and the app's data directory when it is inside", async () => {
    // Prepare: an app's project directory, its runs in .tsworkflow; and an empty directory.
    const storage = new FileStorage({ dir: join(project, ".tsworkflow") });
    await storage.close();
    const empty = join(project, "empty");
    mkdirSync(empty);
    // Act
    const [inProject, inEmpty, show, schedules] = await Promise.all([
      runCli(["runs", "list", "--dir", project]),
      runCli(["runs", "list", "--dir", empty]),
      runCli(["runs", "show", "run_00mxcz1k2a_4e1f0b9c7d2a", "--dir", project]),
      runCli(["schedules", "list", "--dir", empty]),
    ]);
    // Assess
    const hint =
      "Run the command where your app keeps its runs, or pass --dir <the directory your app keeps them in, ./.tsworkflow by default> (or set TSWORKFLOW_DIR).";
    expect(inProject.code).toBe(1);
    expect(inProject.stdout).not.toContain("No runs found");
    expect(inProject.stderr.trim()).toBe(
      `error: No tsworkflow data in ${project}: the directory holds no runs/ (it is not where an app keeps its runs). ${hint} Did you mean --dir ${join(project, ".tsworkflow")}?`,
    );
    expect(inEmpty.code).toBe(1);
    expect(inEmpty.stderr.trim()).toBe(
      `error: No tsworkflow data in ${empty}: the directory holds no runs/ (it is not where an app keeps its runs). ${hint}`,
    );
    expect(show.code).toBe(1);
    expect(show.stderr).toContain(`Did you mean --dir ${join(project, ".tsworkflow")}?`);
    expect(schedules.code).toBe(1);
    expect(schedules.stderr).toContain(`No tsworkflow data in ${empty}`);
  });
});

describe("tsworkflow worker and a workflows module that throws", () => {
  it("names the module whose import threw, with the error", async () => {
    // Prepare
    const dir = join(project, "module");
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
    const file = join(dir, "throws.ts");
    writeFileSync(file, 'export const ready = false;\nthrow new Error("boom at import");\n');
    // Act
    const result = await runCli([
      "worker",
      "--redis",
      `redis://127.0.0.1:${await freePort()}`,
      "--workflows",
      file,
    ]);
    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(`error: Loading ${file} failed: Error: boom at import`);
  });
});

describe("the dashboard's runs page size", () => {
  it("answers 400 with what to send for a limit that is not a whole number, as --limit exits 2", async () => {
    // Prepare
    const app = createDashboard({ storage: new MemoryStorage() });
    // Act
    const responses = await Promise.all(
      ["abc", "0", "1.5", "-3"].map((limit) => app.request(`/api/runs?limit=${limit}`)),
    );
    const page = await app.request("/?limit=abc");
    const fine = await app.request("/api/runs?limit=5000");
    // Assess
    expect(responses.map((response) => response.status)).toEqual([400, 400, 400, 400]);
    expect(await responses[0]?.json()).toEqual({
      error: 'limit must be a whole number ≥ 1, e.g. limit=50; got "abc".',
    });
    expect(page.status).toBe(400);
    expect(await page.text()).toContain("limit must be a whole number ≥ 1");
    expect(fine.status).toBe(200);
    expect(((await fine.json()) as { filters: { limit: number } }).filters.limit).toBe(1000);
  });
});
