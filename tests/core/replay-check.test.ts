import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  configureLogging,
  InvalidEventError,
  patched,
  runChild,
  sleep,
  step,
  type WorkflowEvent,
  workflow,
} from "tsworkflow";
import { Registry } from "tsworkflow/engine";
import { FileStorage, MemoryStorage } from "tsworkflow/local";
import { replayHistory, startLocal } from "tsworkflow/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, runCli } from "../cli/run-cli.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

let sideEffects = 0;
const reserve = step("rc_reserve", async (sku: string) => {
  sideEffects += 1;
  return { sku };
});
const charge = step("rc_charge", async (amount: number) => {
  sideEffects += 1;
  return { amount };
});
const ship = step("rc_ship", async () => {
  sideEffects += 1;
  return "shipped";
});
const notify = step("rc_notify", async () => "notified");

/** Version 1, as the recorded runs ran it. */
const order = workflow("rc_order", async (sku: string) => {
  await reserve(sku);
  await Promise.all([charge(10), ship()]);
  await sleep("1d");
  return "done";
});

/** Another version of `rc_order`, defined beside version 1 without clashing with it. */
function version(fn: (sku: string) => Promise<string>) {
  return new Registry().define(() => workflow("rc_order", fn));
}

let finished: WorkflowEvent[];
let asleep: WorkflowEvent[];

beforeAll(async () => {
  const storage = new MemoryStorage();
  const done = await startLocal(order, ["sku-1"], { storage, timeSkipping: true });
  const sleeping = await startLocal(order, ["sku-2"], { storage });
  finished = await storage.getEvents(done);
  asleep = await storage.getEvents(sleeping);
});

describe("replayHistory", () => {
  it("passes the code the runs ran, running no step", async () => {
    // Prepare
    sideEffects = 0;
    // Act
    const reports = [await replayHistory(order, finished), await replayHistory(order, asleep)];
    // Assess
    expect(reports.map((report) => report.ok)).toEqual([true, true]);
    expect(sideEffects).toBe(0);
  });

  it.each([
    [
      "a renamed step",
      version(async (sku) => {
        await reserve(sku);
        await Promise.all([notify(), ship()]);
        await sleep("1d");
        return "done";
      }),
      /as call 2 but the workflow now calls step "rc_notify"/,
      "rc_charge#0",
    ],
    [
      "a removed sleep",
      version(async (sku) => {
        await reserve(sku);
        await Promise.all([charge(10), ship()]);
        return "done";
      }),
      /sleep.*did not call it/,
      "sleep#0",
    ],
    [
      "a reordered Promise.all",
      version(async (sku) => {
        await reserve(sku);
        await Promise.all([ship(), charge(10)]);
        await sleep("1d");
        return "done";
      }),
      /as call 2 but the workflow now calls step "rc_ship"/,
      "rc_charge#0",
    ],
    [
      "another argument to the first step",
      version(async (sku) => {
        await reserve(`${sku}!`);
        await Promise.all([charge(10), ship()]);
        await sleep("1d");
        return "done";
      }),
      /step "rc_reserve" \(rc_reserve#0\) called with \["sku-1"\] but the workflow now calls it with \["sku-1!"\]/,
      "rc_reserve#0",
    ],
    [
      "another argument to a later step",
      version(async (sku) => {
        await reserve(sku);
        await Promise.all([charge(11), ship()]);
        await sleep("1d");
        return "done";
      }),
      /step "rc_charge" \(rc_charge#0\) called with \[10\]/,
      "rc_charge#0",
    ],
  ])(
    "reports %s at the number of the event that recorded the call",
    async (_change, changed, message, callId) => {
      // Prepare
      const recorded = finished.find(
        (event) =>
          (event.type === "step_started" && event.stepId === callId) ||
          (event.type === "sleep_created" && event.sleepId === callId),
      );
      // Act
      const report = await replayHistory(changed, finished);
      // Assess
      expect(report.ok).toBe(false);
      if (report.ok) return;
      expect(report.message).toMatch(message);
      expect(recorded?.seq).toBeGreaterThan(1);
      expect(report.seq).toBe(recorded?.seq);
    },
  );

  it("reports another argument to a child run at the number of its child_started event", async () => {
    // Prepare
    const child = workflow("rc_child", async (n: number) => n * 2);
    const parent = workflow("rc_parent", async () => {
      await reserve("sku-3");
      return runChild(child, [1]);
    });
    const storage = new MemoryStorage();
    const events = await storage.getEvents(await startLocal(parent, [], { storage }));
    const changed = new Registry().define(() =>
      workflow("rc_parent", async () => {
        await reserve("sku-3");
        return runChild(child, [2]);
      }),
    );
    // Act
    const report = await replayHistory(changed, events);
    // Assess
    const started = events.find((event) => event.type === "child_started");
    expect(started?.seq).toBeGreaterThan(1);
    expect(report).toMatchObject({ ok: false, seq: started?.seq });
  });

  it("reports the error the workflow throws on replay (its class, code and message), at the event where the log goes on", async () => {
    // Prepare
    const throwing = version(async (sku) => {
      if (patched("bad id!")) return "new";
      await reserve(sku);
      return "old";
    });
    // Act
    const report = await replayHistory(throwing, finished);
    // Assess
    const expected =
      'Invalid patch id "bad id!" in patched(): use 1 to 100 letters, digits, "_", ".", ":" or "-".';
    expect(report).toMatchObject({
      ok: false,
      seq: finished.find((event) => event.type === "step_started")?.seq,
      error: { name: "ConfigurationError", code: "CONFIGURATION", message: expected },
      message: `The workflow threw ConfigurationError (CONFIGURATION): ${expected}`,
    });
  });

  it("passes a compatible change: a step added after the point every run reached", async () => {
    // Prepare
    const extended = version(async (sku) => {
      await reserve(sku);
      await Promise.all([charge(10), ship()]);
      await sleep("1d");
      await notify();
      return "done";
    });
    // Act
    const report = await replayHistory(extended, asleep);
    // Assess
    expect(report).toMatchObject({ ok: true, workflowName: "rc_order", events: asleep.length });
  });

  it("passes a run whose payloads are over the default 255 KB, recorded by a store that holds more (S3 on AWS)", async () => {
    // Prepare: a store declaring 1 MB, as the DynamoDB store with an S3 bucket declares 10 MB.
    class RoomyStorage extends MemoryStorage {
      readonly limits = { maxPayloadBytes: 1_000_000 };
    }
    const storage = new RoomyStorage();
    const registry = new Registry();
    const large = registry.define(() => {
      const echo = step("rc_echo", async (text: string) => text.length);
      return workflow("rc_large", async (size: number) => echo("x".repeat(size)));
    });
    const runId = await startLocal(large, [300_000], { storage, registry });
    const events = await storage.getEvents(runId);
    // Act
    const report = await replayHistory(large, events);
    // Assess
    expect(events.at(-1)).toMatchObject({ type: "workflow_completed", result: 300_000 });
    expect(report).toMatchObject({ ok: true, workflowName: "rc_large" });
  });
});

describe("replayHistory given other JSON than a run's log", () => {
  it("refuses the JSON of `runs show` and of `runs list` with InvalidEventError saying what it got and which command prints a log", async () => {
    // Prepare: a run on a directory, and what the CLI prints of it
    const dir = mkdtempSync(join(tmpdir(), "tsw-replay-json-"));
    try {
      const storage = new FileStorage({ dir });
      const runId = await startLocal(order, ["sku-3"], { storage });
      await storage.close();
      const shown = JSON.parse((await runCli(["runs", "show", runId, "--json", "--dir", dir])).stdout);
      const listed = JSON.parse((await runCli(["runs", "list", "--json", "--dir", dir])).stdout);
      const expects =
        "replayHistory() expects a run's log: the array of events that `tsworkflow runs events <id> --json` prints (or getEvents(runId) returns). It got ";

      // Act
      const refusals = await Promise.all(
        [shown, listed, listed.runs, "history.json"].map((json) =>
          replayHistory(order, json).catch((error: unknown) => error as Error),
        ),
      );

      // Assess
      for (const refusal of refusals) {
        expect(refusal).toBeInstanceOf(InvalidEventError);
        expect((refusal as Error).message).toMatch(
          /Save the log with `tsworkflow runs events <id> --json > history.json`\.$/,
        );
      }
      const [show, list, runs, text] = refusals.map((refusal) => (refusal as Error).message);
      expect(show).toContain(
        `${expects}a run document (keys runId, workflowName, status, input, createdAt, updatedAt, …): what \`tsworkflow runs show <id> --json\` prints.`,
      );
      expect(list).toContain(
        `${expects}a page of runs (keys runs): what \`tsworkflow runs list --json\` prints.`,
      );
      expect(runs).toContain(
        `${expects}an array of run documents: the runs of a page that \`tsworkflow runs list --json\` prints.`,
      );
      expect(text).toContain(`${expects}"history.json".`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("tsworkflow replay", () => {
  /** A workflows module in `dir` whose workflow `name(n)` has `body`, with steps `a` and `b`. */
  const module = (dir: string, body: string, name = "cli_rc_flow") => {
    const file = join(dir, `workflows-${Math.random().toString(36).slice(2)}.mjs`);
    writeFileSync(
      file,
      `import { sleep, step, workflow } from ${JSON.stringify(join(REPO_ROOT, "lib/index.ts"))};
const a = step("cli_rc_a", async () => 1);
const b = step("cli_rc_b", async () => 2);
export const flow = workflow("${name}", async (n) => { ${body} });
`,
    );
    return file;
  };

  it("checks the runs of a directory against a workflows module, exiting 1 on a mismatch, and reads `runs events --json`", async () => {
    // Prepare: runs recorded by a module, then the same directory checked against a changed module.
    const dir = mkdtempSync(join(tmpdir(), "tsw-replay-"));
    try {
      const v1 = module(dir, "await a(); await sleep('1d'); return 1;");
      const storage = new FileStorage({ dir: join(dir, "runs") });
      const { flow } = (await import(v1)) as { flow: Parameters<typeof startLocal>[0] };
      const runId = await startLocal(flow, [], { storage });
      await storage.close();
      const args = ["--dir", join(dir, "runs")];
      // Act
      const same = await runCli(["replay", "--workflows", v1, ...args]);
      const changed = await runCli([
        "replay",
        "--workflows",
        module(dir, "await b(); await sleep('1d');"),
        ...args,
      ]);
      const events = await runCli(["runs", "events", runId, "--json", ...args]);
      // Assess
      expect(same.code).toBe(0);
      expect(same.stdout).toMatch(new RegExp(`${runId}\\s+cli_rc_flow\\s+\\d+\\s+ok`));
      expect(same.stderr).toContain("1 run replayed, 0 mismatches.");
      expect(changed.code).toBe(1);
      expect(changed.stdout).toContain('event #2: The log has step "cli_rc_a"');
      expect(changed.stderr).toContain("1 run replayed, 1 mismatch.");
      const report = await replayHistory(flow as never, JSON.parse(events.stdout));
      expect(report.ok).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("checks every matching run, however many, and says so when --limit leaves some unchecked", async () => {
    // Prepare: the oldest of 121 runs is the only one the changed code breaks (it took the other branch).
    const dir = mkdtempSync(join(tmpdir(), "tsw-replay-all-"));
    try {
      const v1 = module(dir, "if (n === 0) await b(); else await a(); await sleep('1d');", "cli_rc_many");
      const storage = new FileStorage({ dir: join(dir, "runs") });
      const { flow } = (await import(v1)) as { flow: Parameters<typeof startLocal>[0] };
      const oldest = await startLocal(flow, [0], { storage });
      for (let n = 1; n <= 120; n += 1) await startLocal(flow, [n], { storage });
      await storage.close();
      const changed = module(dir, "await a(); await sleep('1d');", "cli_rc_many");
      const args = ["--workflows", changed, "--dir", join(dir, "runs")];
      // Act
      const all = await runCli(["replay", ...args]);
      const limited = await runCli(["replay", ...args, "--limit", "50"]);
      // Assess
      expect(all.code).toBe(1);
      expect(all.stderr).toContain("121 runs replayed, 1 mismatch.");
      expect(all.stdout).toMatch(
        new RegExp(`${oldest}\\s+cli_rc_many\\s+\\d+\\s+event #2: The log has step "cli_rc_b"`),
      );
      expect(all.stderr).not.toContain("not checked");
      expect(limited.code).toBe(0);
      expect(limited.stderr).toContain("50 runs replayed, 0 mismatches.");
      expect(limited.stderr).toContain(
        "More runs match and were not checked: the check stopped at --limit 50. Leave out --limit to check every matching run before a deploy.",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
