import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { type Child, spawnChild, until } from "../local/support/child.ts";
import { type CliResult, REPO_ROOT, runCli } from "./run-cli.ts";

const APP = join(import.meta.dirname, "fixtures", "app.ts");
const BIN = join(REPO_ROOT, "bin", "tsworkflow.js");

describe("the CLI steering an app that keeps running on the file backend", () => {
  let dir: string;
  let effects: string;
  const apps: Child[] = [];
  const startApp = async () => {
    const app = spawnChild(APP, [dir, effects]);
    apps.push(app);
    await app.next((m) => m.event === "ready", "the app is ready");
    return app;
  };
  const startRun = async (app: Child, workflow: string, arg: string) => {
    app.send(`start ${workflow} ${arg}`);
    const started = await app.next((m) => m.event === "started" && m.arg === arg, `run ${arg} started`);
    return started.runId as string;
  };
  const cli = (...args: string[]) => runCli([...args, "--dir", dir]);
  const reader = () => new FileStorage({ dir, readOnly: true });
  const events = async (runId: string) => reader().getEvents(runId);
  const count = (log: WorkflowEvent[], type: string) => log.filter((event) => event.type === type).length;
  const statusOf = async (runId: string) => (await reader().getRun(runId))?.status;
  const effectLines = () => (existsSync(effects) ? readFileSync(effects, "utf8").trim().split("\n") : []);

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.kill()));
    rmSync(dir, { recursive: true, force: true });
    rmSync(effects, { force: true });
  });

  const prepare = () => {
    dir = mkdtempSync(join(tmpdir(), "tsw-xp-"));
    effects = `${dir}.effects`;
  };

  it("cancels, sends events to and retries the app's runs without --workflows, the app carrying each out", async () => {
    // Prepare
    prepare();
    const app = await startApp();
    const order = await startRun(app, "approval", "order-1");
    const member = await startRun(app, "subscription", "ann");
    const payment = await startRun(app, "checkout", "42");
    await until(async () => (await statusOf(payment)) === "failed", "the checkout fails");
    await until(async () => (await statusOf(member)) === "suspended", "the subscription sleeps");
    // Act
    const cancelled = await cli("runs", "cancel", member, "--reason", "moved away");
    const sent = await cli(
      "runs",
      "send-event",
      order,
      "approval",
      "--payload",
      '{"approved":true,"by":"eve"}',
      "--signal-id",
      "decision-1",
    );
    const sentAgain = await cli(
      "runs",
      "send-event",
      order,
      "approval",
      "--payload",
      '{"approved":false,"by":"mallory"}',
      "--signal-id",
      "decision-1",
    );
    const retried = await cli("runs", "retry", payment);
    await until(async () => (await statusOf(order)) === "completed", "the order completes");
    await until(async () => (await statusOf(payment)) === "completed", "the retried checkout completes");
    await until(async () => (await statusOf(member)) === "cancelled", "the subscription is cancelled");
    // Assess
    expect(cancelled).toMatchObject({ code: 0 });
    // The CLI waits up to 5 s for the app's clean-up; on a loaded machine it may still be under way.
    expect(cancelled.stdout).toMatch(
      new RegExp(`Run ${member} is cancelled \\(it was suspended\\)|Cancellation of run ${member} requested`),
    );
    expect(sent.code).toBe(0);
    expect(sent.stdout).toContain(`Event "approval" delivered to run ${order}`);
    // Refused: as a repeat of decision-1 if the run still waits, else because the run has completed.
    expect(sentAgain.code).toBe(1);
    expect(sentAgain.stderr).toMatch(/was delivered to run|no longer takes events/);
    expect(retried.code).toBe(0);
    // The app retries it at once: the CLI finds it completed, or going on in the app.
    expect(retried.stdout).toMatch(/is completed \(it was failed\)|Your app \(process \d+/);
    expect((await reader().getRun(order))?.result).toBe("order-1 shipped, approved by eve");
    expect((await events(member)).at(-1)).toMatchObject({ type: "workflow_cancelled", reason: "moved away" });
    expect(effectLines().sort()).toEqual([
      "charge 42 attempt 1",
      "charge 42 attempt 2",
      "goodbye ann",
      "ship order-1 eve",
    ]);
  });

  it("delivers every one of 10 concurrent webhook calls through `tsworkflow dashboard --webhooks` while the app owns the directory, and one of 20 racing calls to one token", async () => {
    // Prepare
    prepare();
    const app = await startApp();
    const orders: string[] = [];
    for (let n = 0; n < 11; n += 1) orders.push(await startRun(app, "webhook", `order-${n}`));
    const tokenOf = async (runId: string) => {
      await until(
        async () => (await events(runId)).some((event) => event.type === "hook_created"),
        "the webhook",
      );
      const created = (await events(runId)).find((event) => event.type === "hook_created");
      return created?.type === "hook_created" ? (created.token as string) : "";
    };
    const tokens = await Promise.all(orders.map(tokenOf));
    const dashboard = spawn(process.execPath, [BIN, "dashboard", "--webhooks", "--port", "0", "--dir", dir], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let printed = "";
    dashboard.stdout.on("data", (chunk: Buffer) => {
      printed += chunk.toString();
    });
    try {
      await until(() => /on (http:\S+)/.test(printed), "the dashboard listens");
      const base = String(/on (http:\S+)/.exec(printed)?.[1]).replace(/\/$/, "");
      const call = (token: string, n: number) =>
        fetch(`${base}/hooks/${token}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ n }),
        }).then(async (response) => ({
          status: response.status,
          body: (await response.json()) as { code?: string },
        }));
      // Act
      const ten = await Promise.all(tokens.slice(0, 10).map((token, n) => call(token, n)));
      const racing = await Promise.all(
        Array.from({ length: 20 }, (_, n) => call(tokens[10] as string, 100 + n)),
      );
      for (const runId of orders)
        await until(async () => (await statusOf(runId)) === "completed", `run ${runId} completes`);
      // Assess
      expect(ten.map((answer) => answer.status)).toEqual(Array(10).fill(202));
      for (const [n, runId] of orders.slice(0, 10).entries())
        expect((await reader().getRun(runId))?.result).toBe(`order-${n} shipped, approved by call ${n}`);
      const winners = racing.flatMap((answer, n) => (answer.status === 202 ? [100 + n] : []));
      expect(winners).toHaveLength(1);
      expect(
        racing.filter((answer) => answer.status === 409 && answer.body.code === "ALREADY_CALLED"),
      ).toHaveLength(19);
      expect((await reader().getRun(orders[10] as string))?.result).toBe(
        `order-10 shipped, approved by call ${winners[0]}`,
      );
      expect(count(await events(orders[10] as string), "hook_received")).toBe(1);
    } finally {
      dashboard.kill("SIGKILL");
    }
  });

  it("loses no request and applies none twice when the app is killed with SIGKILL while they arrive", async () => {
    // Prepare
    prepare();
    const app = await startApp();
    const orders: string[] = [];
    for (let n = 1; n <= 4; n += 1) orders.push(await startRun(app, "approval", `order-${n}`));
    const members: string[] = [];
    for (const user of ["ann", "bob", "cy"]) members.push(await startRun(app, "subscription", user));
    await until(
      async () => (await statusOf(members[2] as string)) === "suspended",
      "the subscriptions sleep",
    );
    // Act: the requests go out together; the app dies while they arrive and starts again.
    const requests = [
      ...orders.map((runId, index) =>
        cli(
          "runs",
          "send-event",
          runId,
          "approval",
          "--payload",
          `{"approved":true,"by":"u${index}"}`,
          "--signal-id",
          `s-${index}`,
        ),
      ),
      ...members.map((runId) => cli("runs", "cancel", runId, "--reason", "closing")),
    ];
    await until(() => effectLines().length > 0, "the app applies a first request");
    await app.kill();
    const appliedBeforeTheKill = effectLines().length;
    const answers = await Promise.all(requests);
    await startApp();
    for (const runId of [...orders, ...members])
      await until(
        async () => ["completed", "cancelled"].includes((await statusOf(runId)) ?? ""),
        `run ${runId} ends`,
      );
    // Assess
    expect(appliedBeforeTheKill).toBeLessThan(orders.length + members.length);
    for (const answer of answers) expect(answer, answer.stderr).toMatchObject({ code: 0 });
    for (const [index, runId] of orders.entries()) {
      const log = await events(runId);
      expect(count(log, "hook_received")).toBe(1);
      expect((await reader().getRun(runId))?.result).toBe(
        `order-${index + 1} shipped, approved by u${index}`,
      );
    }
    for (const runId of members) {
      const log = await events(runId);
      expect(count(log, "cancel_requested")).toBe(1);
      expect(count(log, "workflow_cancelled")).toBe(1);
      expect(log.filter((event) => event.type === "step_completed")).toHaveLength(1);
    }
  });

  it("stores a send once when the requesting CLI is killed with SIGKILL on the way and the send is repeated", async () => {
    // Prepare
    prepare();
    const app = await startApp();
    const delays = [150, 350, 550, 750, 950, 1200];
    const orders: string[] = [];
    for (const delay of delays) orders.push(await startRun(app, "approval", `order-${delay}`));
    // Act: each send is killed after a while (before, during or after its request is stored), then repeated.
    const repeated: CliResult[] = [];
    for (const [index, runId] of orders.entries()) {
      const args = [
        "runs",
        "send-event",
        runId,
        "approval",
        "--payload",
        `{"approved":true,"by":"k${index}"}`,
        "--signal-id",
        "only-once",
        "--dir",
        dir,
      ];
      const killed = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: "ignore" });
      const gone = new Promise((resolve) => killed.once("exit", resolve));
      setTimeout(() => killed.kill("SIGKILL"), delays[index]);
      await gone;
      repeated.push(await cli(...args.slice(0, -2)));
    }
    for (const runId of orders)
      await until(async () => (await statusOf(runId)) === "completed", `run ${runId} completes`);
    // Assess: delivered once, by the killed send or by the repeated one, which says which.
    for (const [index, runId] of orders.entries()) {
      const log = await events(runId);
      expect(count(log, "hook_received")).toBe(1);
      expect((await reader().getRun(runId))?.result).toBe(
        `order-${delays[index]} shipped, approved by k${index}`,
      );
      const answer = repeated[index] as CliResult;
      expect([0, 1]).toContain(answer.code);
      if (answer.code === 1) expect(answer.stderr).toMatch(/was delivered to run|no longer takes events/);
    }
    expect(effectLines()).toHaveLength(orders.length);
    await app.kill();
  });
});
