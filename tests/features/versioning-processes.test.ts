import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, runCli } from "../cli/run-cli.ts";
import { type RedisServer, startRedisServer } from "../redis/redis-server.ts";

/**
 * Code changed under live runs, each version in its own process (as a deploy does), on the file backend and
 * on Redis: runs that had passed the patched point keep the old branch, the others take the new one, each
 * run goes on with the version of a workflow it started with, and the replay checker tells the compatible
 * change from the incompatible one.
 */

const run = promisify(execFile);
const fixtures = join(REPO_ROOT, "tests/fixtures/versioning");

async function drive(backend: string, location: string, phase: string, runs?: string): Promise<string> {
  const args = ["--import", "tsx", join(fixtures, "drive.ts"), backend, location, phase];
  const { stdout } = await run(process.execPath, runs ? [...args, runs] : args, {
    cwd: REPO_ROOT,
    timeout: 90_000,
  });
  return stdout.trim().split("\n").at(-1) as string;
}

interface RunReport {
  status: string;
  result: string | null;
  error: string | null;
  steps: string[];
  patches: string[];
  version: string | null;
}

function expectPatchedOutcome(report: Record<string, RunReport>): void {
  // Passed the point under the old code: email again, no patch recorded.
  expect(report.past).toMatchObject({ status: "completed", result: "email to bob", patches: [] });
  expect(report.past?.steps).toEqual(["vf_greet", "vf_send_email"]);
  // Had not reached it: the new branch, recorded once.
  expect(report.before).toMatchObject({
    status: "completed",
    result: "sms to ann",
    patches: ["sms-instead"],
  });
  expect(report.before?.steps).toEqual(["vf_greet", "vf_send_sms"]);
  expect(report.fresh).toMatchObject({ status: "completed", result: "sms to dan", patches: ["sms-instead"] });
  // Each run on the version it started with; new runs on the highest.
  expect(report.versioned).toMatchObject({ status: "completed", result: "v1 onboarded sue", version: "1" });
  expect(report.newVersion).toMatchObject({ status: "completed", result: "v2 onboarded tom", version: "2" });
}

describe("changing workflow code between processes", () => {
  let redis: RedisServer;
  const dirs: string[] = [];
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "tsw-versioning-"));
    dirs.push(dir);
    return dir;
  };

  it("on the file backend, keeps old runs on the old branch and version, and the replay checker gates the change", async () => {
    // Prepare: runs of the first code, left waiting before and after the point that changes.
    const dir = tempDir();
    const runs = await drive("file", dir, "v1");
    const v2 = join(fixtures, "workflows-v2.ts");
    const unpatched = join(fixtures, "workflows-v2-unpatched.ts");
    // Act: the checker on the live runs, then the new code in a fresh process.
    const compatible = await runCli(["replay", "--workflows", v2, "--dir", dir]);
    const incompatible = await runCli(["replay", "--workflows", unpatched, "--dir", dir]);
    const report = JSON.parse(await drive("file", dir, "v2", runs)) as Record<string, RunReport>;
    const after = await runCli(["replay", "--workflows", v2, "--dir", dir, "--json"]);
    // Assess
    expect(compatible.code).toBe(0);
    expect(incompatible.code).toBe(1);
    const { past } = JSON.parse(runs) as { past: string };
    expect(incompatible.stdout).toMatch(new RegExp(`${past}.*vf_send_email`));
    expectPatchedOutcome(report);
    expect(after.code).toBe(0);
    expect((JSON.parse(after.stdout) as { ok: boolean }[]).every((entry) => entry.ok)).toBe(true);
  });

  it("on the file backend, fails the run that went past the changed point when the change is not patched", async () => {
    // Prepare
    const dir = tempDir();
    const runs = await drive("file", dir, "v1");
    // Act
    const report = JSON.parse(await drive("file", dir, "v2-unpatched", runs)) as Record<string, RunReport>;
    // Assess
    expect(report.past).toMatchObject({ status: "failed" });
    expect(report.past?.error).toContain('The log has step "vf_send_email"');
    expect(report.before).toMatchObject({ status: "completed", result: "sms to ann" });
  });

  it("on Redis, keeps old runs on the old branch and version across worker processes, and the replay checker gates the change", async () => {
    // Prepare
    const runs = await drive("redis", redis.url, "v1");
    const store = ["--redis", redis.url, "--prefix", "vf:"];
    // Act
    const compatible = await runCli(["replay", "--workflows", join(fixtures, "workflows-v2.ts"), ...store]);
    const incompatible = await runCli([
      "replay",
      "--workflows",
      join(fixtures, "workflows-v2-unpatched.ts"),
      ...store,
    ]);
    const report = JSON.parse(await drive("redis", redis.url, "v2", runs)) as Record<string, RunReport>;
    // Assess
    expect(compatible.code).toBe(0);
    expect(incompatible.code).toBe(1);
    expect(incompatible.stdout).toMatch(
      new RegExp(`${(JSON.parse(runs) as { past: string }).past}.*vf_send_email`),
    );
    expectPatchedOutcome(report);
  });
});
