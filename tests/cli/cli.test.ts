import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FatalError, log, workflow } from "tsworkflow";
import { FileStorage, LocalRuntime } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import type { RunRecord } from "../../lib/ports/event-store.ts";
import { type SeededRuns, seedRuns } from "./fixtures/seed.ts";
import { awaiting, checkedApproval } from "./fixtures/workflows.ts";
import { runCli } from "./run-cli.ts";

const WORKFLOWS = "tests/cli/fixtures/workflows.ts";

const escaping = workflow("cli_escaping", async (text: string) => {
  log.warning(`careful ${text}`);
  throw new FatalError(text);
});
// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for ANSI colour codes
const ANSI = /\u001b\[/;

let dir: string;
let runs: SeededRuns;
const cli = (...args: string[]) => runCli([...args, "--dir", dir]);
const dataLines = (stdout: string) => stdout.trim().split("\n").slice(1);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tsw-cli-"));
  runs = await seedRuns(dir);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.concurrent("tsworkflow runs list", () => {
  it("prints the runs newest first as a table, without colours when the output is not a terminal", async () => {
    // Act
    const result = await cli("runs", "list");
    // Assess
    expect(result.code).toBe(0);
    const [header, ...rows] = result.stdout.trim().split("\n");
    expect(header).toMatch(/^RUN ID\s+WORKFLOW\s+STATUS\s+CREATED \(UTC\)\s+DURATION$/);
    expect(rows).toHaveLength(7);
    expect(rows[0]).toContain(runs.onboarding);
    expect(rows[0]).toMatch(/onboarding\s+completed/);
    expect(result.stdout).not.toMatch(ANSI);
  });

  it("filters by status and by workflow, and stops at --limit", async () => {
    // Act
    const failed = await cli("runs", "list", "--status", "failed");
    const hellos = await cli("runs", "list", "--workflow", "hello", "--limit", "2");
    // Assess
    expect(
      dataLines(failed.stdout)
        .map((line) => line.split(/\s+/)[0])
        .sort(),
    ).toEqual([runs.failed, runs.failedToo].sort());
    expect(dataLines(hellos.stdout)).toHaveLength(2);
    expect(dataLines(hellos.stdout).every((line) => /\shello\s/.test(line))).toBe(true);
    expect(hellos.stderr).toMatch(/More runs: pass --cursor \S+ for the next page/);
  });

  it("pages through every run with --limit and the --cursor it prints, newest first, each run once", async () => {
    // Prepare
    const all = dataLines((await cli("runs", "list")).stdout).map((line) => line.split(/\s+/)[0]);
    // Act
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page += 1) {
      const result = await cli("runs", "list", "--limit", "3", ...(cursor ? ["--cursor", cursor] : []));
      expect(result.code).toBe(0);
      seen.push(...dataLines(result.stdout).map((line) => line.split(/\s+/)[0] as string));
      cursor = /--cursor (\S+)/.exec(result.stderr)?.[1];
      if (!cursor) break;
    }
    const json = JSON.parse((await cli("runs", "list", "--limit", "3", "--json")).stdout) as {
      runs: RunRecord[];
      nextCursor: string;
    };
    const bad = await cli("runs", "list", "--cursor", "not-a-cursor");
    // Assess
    expect(seen).toEqual(all);
    expect(json.runs.map((run) => run.runId)).toEqual(all.slice(0, 3));
    expect(typeof json.nextCursor).toBe("string");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Invalid cursor");
  });

  it("prints the run documents as JSON with --json", async () => {
    // Act
    const result = await cli("runs", "list", "--json", "--status", "suspended");
    // Assess
    expect(result.code).toBe(0);
    const listed = (JSON.parse(result.stdout) as { runs: RunRecord[] }).runs;
    expect(listed).toEqual([
      expect.objectContaining({
        runId: runs.sleeping,
        workflowName: "reminder",
        status: "suspended",
        input: ["user_7"],
      }),
    ]);
  });

  it("colours the statuses when FORCE_COLOR is set, and never when NO_COLOR is", async () => {
    // Act
    const forced = await runCli(["runs", "list", "--dir", dir], { FORCE_COLOR: "1" });
    const refused = await runCli(["runs", "list", "--dir", dir], { FORCE_COLOR: "1", NO_COLOR: "1" });
    // Assess
    expect(forced.stdout).toContain("\u001b[32mcompleted\u001b[39m");
    expect(forced.stdout).toContain("\u001b[31mfailed\u001b[39m");
    expect(refused.stdout).not.toMatch(ANSI);
  });
});

describe.concurrent("tsworkflow runs show and runs events", () => {
  it("shows a completed run with its result and its steps, the retried one with its three attempts", async () => {
    // Act
    const result = await cli("runs", "show", runs.onboarding);
    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/status\s+completed/);
    expect(result.stdout).toMatch(/idempotency key\s+onboard-user_123/);
    expect(result.stdout).toContain('"contact": "crm-user_123"');
    expect(result.stdout).toMatch(/sync_crm#0\s+sync_crm\s+completed\s+3\s/);
    expect(result.stdout).toMatch(/sleep#0\s+sleep\s+completed\s+-\s/);
  });

  it("shows a failed run with its error and stack, and exits with 1", async () => {
    // Act
    const result = await cli("runs", "show", runs.failed);
    // Assess
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/status\s+failed/);
    expect(result.stdout).toContain("FatalError: card declined for 42 EUR");
    expect(result.stdout).toMatch(/\n\s+at .*workflows\.ts/);
  });

  it("shows what a sleeping run waits for", async () => {
    // Act
    const result = await cli("runs", "show", runs.sleeping);
    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/waiting for\s+sleep#0 until /);
    expect(result.stdout).toMatch(/sleep#0\s+sleep\s+sleeping\s/);
  });

  it("prints the run document as JSON with --json", async () => {
    // Act
    const result = await cli("runs", "show", runs.onboarding, "--json");
    // Assess
    expect(JSON.parse(result.stdout)).toMatchObject({
      runId: runs.onboarding,
      status: "completed",
      result: { profile: { userId: "user_123", plan: "free" }, crm: { contact: "crm-user_123" } },
    });
  });

  it("prints the event log in order, as a table and as JSON", async () => {
    // Act
    const text = await cli("runs", "events", runs.failed);
    const json = await cli("runs", "events", runs.failed, "--json");
    // Assess
    expect(text.code).toBe(0);
    const events = JSON.parse(json.stdout) as WorkflowEvent[];
    expect(events.map((event) => event.type)).toEqual([
      "workflow_started",
      "step_started",
      "step_failed",
      "workflow_failed",
    ]);
    const lines = dataLines(text.stdout);
    expect(lines.map((line) => line.split(/\s+/)[0])).toEqual(["1", "2", "3", "4"]);
    expect(lines[2]).toMatch(/step_failed\s+charge_card#0 attempt 1: FatalError: card declined for 42 EUR/);
  });
});

describe.concurrent("tsworkflow errors and exit codes", () => {
  it("says that a run id is unknown, without a stack trace, and exits with 1", async () => {
    // Act
    const result = await cli("runs", "show", "run_does_not_exist");
    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('No run with id "run_does_not_exist"');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).toBe("");
  });

  it("exits with 2 for a malformed run id, an unknown status, a bad limit, an unknown command or a missing --workflows module", async () => {
    // Act
    const results = await Promise.all([
      cli("runs", "events", "not a run id!"),
      cli("runs", "list", "--status", "sleeping"),
      cli("runs", "list", "--limit", "0"),
      cli("runs", "frobnicate"),
      cli("replay", "--workflows", "tests/cli/fixtures/missing.ts"),
    ]);
    // Assess
    expect(results.map((result) => result.code)).toEqual([2, 2, 2, 2, 2]);
    expect(results[0]?.stderr).toContain("Invalid run id");
    expect(results[1]?.stderr).toContain("pending, running, suspended, completed, failed, cancelled");
    expect(results[2]?.stderr).toContain("--limit must be a whole number");
    expect(results[4]?.stderr).toContain("tests/cli/fixtures/missing.ts does not exist");
  });

  it("names the directory when the file backend's directory does not exist", async () => {
    // Act
    const result = await runCli(["runs", "list", "--dir", join(dir, "missing")]);
    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`No tsworkflow data in ${join(dir, "missing")}`);
  });

  it("exits with 2 for an endpoint that is not an http(s) URL, naming the option or variable, before any request", async () => {
    // Prepare
    const table = ["runs", "list", "--table", "workflows", "--region", "eu-west-1"];
    // Act
    const [endpoint, s3Endpoint, fromEnvironment, s3FromEnvironment] = await Promise.all([
      runCli([...table, "--endpoint", "localhost:8000"]),
      runCli([...table, "--s3-endpoint", "http//127.0.0.1:4569"]),
      runCli(table, { TSWORKFLOW_DYNAMODB_ENDPOINT: "ftp://127.0.0.1:8000" }),
      runCli(table, { TSWORKFLOW_S3_ENDPOINT: "s3.local" }),
    ]);
    // Assess
    expect([endpoint, s3Endpoint, fromEnvironment, s3FromEnvironment].map((result) => result.code)).toEqual([
      2, 2, 2, 2,
    ]);
    expect(endpoint.stderr).toContain(
      '--endpoint takes an http:// or https:// URL, e.g. http://127.0.0.1:8000; got "localhost:8000".',
    );
    expect(s3Endpoint.stderr).toContain(
      '--s3-endpoint takes an http:// or https:// URL, e.g. http://127.0.0.1:4569; got "http//127.0.0.1:4569".',
    );
    expect(fromEnvironment.stderr).toContain("TSWORKFLOW_DYNAMODB_ENDPOINT takes an http:// or https:// URL");
    expect(s3FromEnvironment.stderr).toContain("TSWORKFLOW_S3_ENDPOINT takes an http:// or https:// URL");
    expect(endpoint.stderr).not.toContain("Cannot use the DynamoDB table");
  });

  it("names the Redis URL and the DynamoDB endpoint when they cannot be reached", async () => {
    // Act
    const [redis, dynamodb] = await Promise.all([
      runCli(["runs", "list", "--redis", "redis://127.0.0.1:1"]),
      runCli([
        "runs",
        "list",
        "--table",
        "workflows",
        "--region",
        "eu-west-1",
        "--endpoint",
        "http://127.0.0.1:1",
      ]),
    ]);
    // Assess
    expect(redis.code).toBe(1);
    expect(redis.stderr).toContain("redis://127.0.0.1:1");
    expect(redis.stderr).not.toMatch(/\n\s+at /);
    expect(dynamodb.code).toBe(1);
    expect(dynamodb.stderr).toContain('DynamoDB table "workflows" in eu-west-1 at http://127.0.0.1:1');
    expect(dynamodb.stderr).not.toMatch(/\n\s+at /);
  });

  it("asks for --redis before running a worker", async () => {
    // Act
    const result = await runCli(["worker", "--workflows", WORKFLOWS], { TSWORKFLOW_REDIS_URL: undefined });
    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("pass --redis URL");
  });
});

describe("tsworkflow runs send-event", () => {
  it("stores an event for the next app when none runs, and runs the workflow here with --workflows", async () => {
    // Prepare
    const eventDir = mkdtempSync(join(tmpdir(), "tsw-cli-event-"));
    const storage = new FileStorage({ dir: eventDir });
    const [stored, ranHere] = [
      await startLocal(awaiting, [], { storage }),
      await startLocal(awaiting, [], { storage }),
    ];
    await storage.close();
    const send = (runId: string, ...extra: string[]) =>
      runCli(["runs", "send-event", runId, "go", "--payload", '{"ok":true}', "--dir", eventDir, ...extra]);
    try {
      // Act
      const storedAnswer = await send(stored);
      const ranHereAnswer = await send(ranHere, "--workflows", WORKFLOWS);
      const show = async (runId: string) =>
        JSON.parse((await runCli(["runs", "show", runId, "--json", "--dir", eventDir])).stdout) as RunRecord;
      const storedRun = await show(stored);
      const finishedRun = await show(ranHere);
      const shownText = await runCli(["runs", "show", stored, "--dir", eventDir]);
      // Assess
      expect(storedAnswer.code).toBe(0);
      expect(storedAnswer.stdout).toContain("It is stored: no app owns");
      expect(storedAnswer.stdout).toContain("or pass --workflows to run it here now");
      expect(storedRun.status).toBe("suspended");
      // Where the user looks, the stored event shows until an app takes it in.
      expect(storedRun).toMatchObject({
        storedRequests: [{ kind: "event", description: expect.stringMatching(/^event "go" since /) }],
      });
      expect(shownText.stdout).toMatch(
        /stored for the app\s+event "go" since \S+ \S+ \(taken in when an app runs on the directory\)/,
      );
      expect(finishedRun).not.toHaveProperty("storedRequests");
      expect(ranHereAnswer.code).toBe(0);
      expect(ranHereAnswer.stdout).toContain("Its code ran here: the run is completed.");
      expect(ranHereAnswer.stdout).not.toContain("no app owns");
      expect(finishedRun).toMatchObject({ status: "completed", result: "went" });
    } finally {
      rmSync(eventDir, { recursive: true, force: true });
    }
  });
});

describe("tsworkflow runs cancel and runs retry", () => {
  it("stores a cancellation for the next app when none runs, and carries it out here with the app's workflows", async () => {
    // Act
    const stored = await cli("runs", "cancel", runs.sleeping, "--reason", "user left");
    const storedRun = JSON.parse((await cli("runs", "show", runs.sleeping, "--json")).stdout) as RunRecord;
    const wrongModule = await cli(
      "runs",
      "cancel",
      runs.sleeping,
      "--workflows",
      "tests/cli/fixtures/other-workflows.ts",
    );
    const cancelled = await cli("runs", "cancel", runs.sleeping, "--workflows", WORKFLOWS);
    const again = await cli("runs", "cancel", runs.sleeping, "--workflows", WORKFLOWS);
    const events = JSON.parse(
      (await cli("runs", "events", runs.sleeping, "--json")).stdout,
    ) as WorkflowEvent[];
    // Assess
    expect(stored.code).toBe(0);
    expect(stored.stdout).toContain("is stored: no app owns");
    expect(storedRun.status).toBe("suspended");
    expect(storedRun).toMatchObject({
      storedRequests: [
        { kind: "cancel", description: expect.stringMatching(/^a cancellation \("user left"\) since /) },
      ],
    });
    expect(wrongModule.code).toBe(2);
    expect(wrongModule.stderr).toContain('does not define the workflow "reminder"');
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`Run ${runs.sleeping} is cancelled (it was suspended)`);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("is already cancelled");
    // The reason is the stored request's: one cancellation, carried out once.
    expect(events.filter((event) => event.type === "cancel_requested")).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ type: "workflow_cancelled", reason: "user left" });
  });

  it("retries a failed run from its failed step: recorded now, run by the app, or here with --workflows", async () => {
    // Act
    const recorded = await cli("runs", "retry", runs.failed);
    const ranHere = await cli("runs", "retry", runs.failedToo, "--workflows", WORKFLOWS);
    const events = JSON.parse(
      (await cli("runs", "events", runs.failedToo, "--json")).stdout,
    ) as WorkflowEvent[];
    // Assess
    expect(recorded.code).toBe(0);
    expect(recorded.stdout).toContain("is running (it was failed)");
    expect(recorded.stdout).toContain("when your app next starts");
    // The step declines the card again: the run fails again, and the command says so.
    expect(ranHere.code).toBe(1);
    expect(ranHere.stdout).toContain("is failed (it was failed)");
    expect(events.map((event) => event.type).slice(4)).toEqual([
      "workflow_retried",
      "step_started",
      "step_failed",
      "workflow_failed",
    ]);
    expect(events[5]).toMatchObject({ stepId: "charge_card#0", attempt: 2 });
  });
});

describe("tsworkflow --help", () => {
  it("lists the commands and exits with 0", async () => {
    // Act
    const result = await runCli(["--help"]);
    // Assess
    expect(result.code).toBe(0);
    for (const command of ["runs", "dashboard", "worker"]) expect(result.stdout).toContain(command);
  });
});

describe("tsworkflow runs show: waits for events", () => {
  it("shows a wait whose event's payload failed its schema as failed, with the schema's error, like a failed step", async () => {
    // Prepare
    const own = mkdtempSync(join(tmpdir(), "tsw-cli-payload-"));
    const runtime = new LocalRuntime({ dir: own });
    try {
      const { runId } = await runtime.start(checkedApproval, []);
      await runtime.idle();
      await runtime.sendEvent(runId, "approval", { ok: "yes" });
      await runtime.waitForRun(runId, { timeoutMs: 30_000 });
      await runtime.close();

      // Act
      const show = await runCli(["runs", "show", runId, "--dir", own]);

      // Assess
      expect(show.code).toBe(1);
      expect(show.stdout).toMatch(
        /approval#0\s+event "approval"\s+failed\s+-\s+\S+\s+\S+\s+EventPayloadError: The payload of event "approval" does not match its schema: ok: Invalid input: expected boolean, received string\./,
      );
    } finally {
      await runtime.close();
      rmSync(own, { recursive: true, force: true });
    }
  });
});

describe("terminal escapes in run data", () => {
  it("prints control characters from error and log messages as visible escapes in runs show and runs events, and exactly in --json", async () => {
    // Prepare: a run that logs and fails with ANSI and OSC sequences (clear screen, window title, a hidden link).
    const own = mkdtempSync(join(tmpdir(), "tsw-cli-escapes-"));
    const hostile =
      "\u001b[2J\u001b]0;pwned\u0007\u001b]8;;https://evil.example\u0007click\u001b]8;;\u0007\r\u009b31m";
    const runtime = new LocalRuntime({ dir: own });
    try {
      const { runId } = await runtime.start(escaping, [hostile]);
      await runtime.waitForRun(runId, { timeoutMs: 30_000 });
      await runtime.close();
      // Act
      const show = await runCli(["runs", "show", runId, "--dir", own], { FORCE_COLOR: "1" });
      const events = await runCli(["runs", "events", runId, "--dir", own]);
      const json = JSON.parse(
        (await runCli(["runs", "events", runId, "--json", "--dir", own])).stdout,
      ) as WorkflowEvent[];
      // Assess
      for (const output of [show.stdout, events.stdout]) {
        for (const raw of ["\u0007", "\u009b", "\r", "\u001b]", "\u001b[2J"])
          expect(output).not.toContain(raw);
        expect(output).toContain("\\u001b]0;pwned\\u0007");
      }
      expect(show.stdout).toContain("\u001b[31m"); // our own colours are kept
      expect(json.find((event) => event.type === "log_warning")).toMatchObject({
        message: `careful ${hostile}`,
      });
      expect(json.at(-1)).toMatchObject({ type: "workflow_failed", error: { message: hostile } });
    } finally {
      await runtime.close();
      rmSync(own, { recursive: true, force: true });
    }
  });
});
