import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Runs test files under Node's own test runner (TAP output), in a child process, as a user would. */
function nodeTest(file: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--test", "--test-reporter=tap", file],
      { cwd: root, timeout: 90_000, env: { ...process.env, NODE_OPTIONS: "" } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

describe("the test environment under node:test", () => {
  it("passes the README's approval tests written with node:test and node:assert", async () => {
    // Act
    const { code, output } = await nodeTest("tests/testing/node-test/approval.node-test.ts");

    // Assess
    expect(output).toContain("# pass 4");
    expect(output).toContain("# fail 0");
    expect(code).toBe(0);
  });

  it("reports runs that did not end as expected with why and their timeline in the failure, a run pending for a slot too", async () => {
    // Act
    const { code, output } = await nodeTest("tests/testing/node-test/stuck.node-test.ts");

    // Assess
    expect(code).toBe(1);
    expect(output).toContain("# fail 2");
    expect(output.match(/name: 'InvalidRunStateError'/g)).toHaveLength(2);
    expect(output).toMatch(/Run run_\w+ of approval_order is suspended, waiting for event "webhook\.0"/);
    for (const type of ["workflow_started", "hook_created", "step_completed", "workflow_suspended"])
      expect(output).toContain(type);
    expect(output).toMatch(
      /Run run_\w+ of account_sync is pending and will not finish by itself: it waits for a run concurrency slot of key run:account_sync:acme \(at most 1 at once\), held by run run_\w+\./,
    );
    expect(output).toMatch(
      /Run run_\w+ of account_sync is pending, waiting for a run concurrency slot of key run:account_sync:acme/,
    );
  });
});
