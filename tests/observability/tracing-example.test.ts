import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const example = join(import.meta.dirname, "../../examples/tracing.ts");

describe("examples/tracing.ts", () => {
  it("prints the spans of a run, its retry, sleep and child run, all in the trace of the caller's span", async () => {
    // Act
    const { stdout } = await run(process.execPath, ["--import", "tsx", example], { timeout: 60_000 });
    // Assess
    const summary = /run (\S+) completed in trace ([0-9a-f]{32})/.exec(stdout);
    expect(summary).not.toBeNull();
    const traceIds = new Set(
      [...stdout.matchAll(/^ {2}traceId: '([0-9a-f]{32})'/gm)].map((match) => match[1]),
    );
    expect(traceIds).toEqual(new Set([summary?.[2]]));
    const names = [...stdout.matchAll(/^ {2}name: '([^']+)'/gm)].map((match) => match[1]);
    for (const name of [
      "POST /orders",
      "start traced_order",
      "step charge_card",
      "sleep sleep#0",
      "child traced_receipt",
      "step send_receipt",
      "run traced_receipt",
      "run traced_order",
    ])
      expect(names).toContain(name);
    expect(names.filter((name) => name === "step charge_card")).toHaveLength(2);
  });
});
