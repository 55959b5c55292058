import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stepJobId } from "../../lib/adapters/redis/bullmq-queue.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { inboxIds } from "../../lib/ports/inbox.ts";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { crashing, exclusive, graceful, pinged, slowRated } from "./fixtures/workflows.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker-process.ts";

/** Short, so that a killed worker's step is handed over quickly. */
const STALLED_AFTER_MS = 1_500;
const prefix = `tsw-crash-${process.pid}:`;
let server: RedisServer;
let client: RedisRuntime;
let testDir: string;
const workers: WorkerProcess[] = [];

async function worker(
  workerId: string,
  options: { drainTimeoutMs?: number; concurrency?: number } = {},
): Promise<WorkerProcess> {
  const started = await startWorkerProcess({
    url: server.url,
    prefix,
    workerId,
    testDir,
    stalledAfterMs: STALLED_AFTER_MS,
    ...options,
  });
  workers.push(started);
  return started;
}

async function markerPid(label: string, timeoutMs = 15_000): Promise<number> {
  const file = join(testDir, `${label}.started`);
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file) || readFileSync(file, "utf8") === "") {
    if (Date.now() > deadline) throw new Error(`step ${label} never started`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Number(readFileSync(file, "utf8"));
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await pause(50);
  }
}

/** The lines of a log the fixture steps write, split on spaces into the fields `Line` names. */
const logLines = <Line extends string[]>(file: string) =>
  existsSync(join(testDir, file))
    ? readFileSync(join(testDir, file), "utf8")
        .trim()
        .split("\n")
        .map((line) => line.split(" ") as Line)
    : [];

/** The most copies running at once in a sequence of `begin`/`end` marks. */
function mostAtOnce(marks: { kind: string }[]): number {
  let running = 0;
  let highest = 0;
  for (const mark of marks) {
    running += mark.kind === "begin" ? 1 : -1;
    highest = Math.max(highest, running);
  }
  return highest;
}

/** The `begin`/`end` marks of the `exclusive_call` copies, in the order they were written. */
const exclusiveMarks = () =>
  logLines<[string, string, string, string]>("exclusive.log").map(([kind, label, pid, at]) => ({
    kind,
    label,
    pid: Number(pid),
    at: Number(at),
  }));

beforeAll(async () => {
  server = await startRedisServer();
  testDir = mkdtempSync(join(tmpdir(), "tsw-redis-crash-"));
  client = createRedisRuntime({ url: server.url, prefix });
});

afterAll(async () => {
  await client?.close();
  await Promise.all(workers.map((w) => w.stop()));
  await server?.stop();
  if (testDir) rmSync(testDir, { recursive: true, force: true });
});

describe("Redis mode when workers die or stop", () => {
  it("finishes a run on another worker after the one running its step is killed with SIGKILL", async () => {
    // Prepare
    const [first, second] = await Promise.all([worker("crash-a"), worker("crash-b")]);
    const { runId } = await client.start(crashing, ["kill-me"]);
    const victimPid = await markerPid("kill-me");
    const victim = [first, second].find((w) => w?.pid === victimPid) as WorkerProcess;
    const survivor = victim === first ? second : first;
    expect(victim).toBeDefined();
    // Act
    process.kill(victimPid, "SIGKILL");
    const run = await client.waitForRun(runId, { timeoutMs: 20_000 });
    // Assess
    expect(await victim.exited).toBeDefined();
    expect(run.status).toBe("completed");
    expect(run.result).toMatchObject({ label: "kill-me", worker: survivor?.workerId, firstPid: victimPid });
    const events = await client.getEvents(runId);
    const completed = events.filter(
      (e): e is Extract<WorkflowEvent, { type: "step_completed" }> => e.type === "step_completed",
    );
    expect(completed.map((e) => e.stepId)).toEqual(["double#0", "hang_once#0", "double#1"]);
    expect(new Set(completed.map((e) => `${e.stepId}/${e.attempt}`)).size).toBe(completed.length);
    expect(events.at(-1)?.type).toBe("workflow_completed");
  });

  it("finishes a run whose killed worker applied an older event in the activation of a newer one", async () => {
    // Prepare: two events in the inbox, the first one's activation not sent yet (still to come); the second
    // one's activation applies the first one (a wait takes the oldest event), commits the step it starts
    // and runs it inline, where it hangs.
    const [first, second] = await Promise.all([worker("older-a"), worker("older-b")]);
    const { runId } = await client.start(pinged, []);
    await until(
      "the run waits for its event",
      async () => (await client.getRun(runId))?.status === "suspended",
    );
    await client.storage.putOutcome({
      runId,
      stepId: inboxIds.signal("ping", "ping-0"),
      attempt: 1,
      recordedAt: new Date().toISOString(),
      ok: true,
      result: { name: "ping", payload: "older" },
    });
    await client.sendEvent(runId, "ping", "newer", { signalId: "ping-1" });
    const victimPid = await markerPid("older");
    const victim = [first, second].find((w) => w?.pid === victimPid) as WorkerProcess;
    expect(victim).toBeDefined();
    // Act: its job, delivered again to the other worker, finds its own event still not taken.
    process.kill(victimPid, "SIGKILL");
    const run = await client.waitForRun(runId, { timeoutMs: 20_000 });
    // Assess
    expect(run).toMatchObject({ status: "completed", result: { label: "older", second: "newer" } });
    expect(run.result).toMatchObject({ firstPid: victimPid });
  });

  it("finishes the step in flight before a worker stops on SIGTERM", async () => {
    // Prepare
    const only = await worker("graceful");
    for (const other of workers) if (other !== only) await other.stop();
    const { runId } = await client.start(graceful, ["drain-me"]);
    await markerPid("drain-me");
    // Act
    const exit = await only.stop();
    // Assess
    expect(exit).toBe(0);
    expect(only.output()).toContain("worker graceful received SIGTERM");
    // The step ran to its end on this worker and its result was recorded (in the log, the step having run
    // inline in the run's activation); whatever is left of the run is for another worker.
    const completed = (await client.getEvents(runId)).filter((e) => e.type === "step_completed");
    expect(completed).toMatchObject([
      { stepId: "slow#0", attempt: 1, result: { label: "drain-me", worker: "graceful" } },
    ]);
    await worker("after-graceful");
    expect(await client.waitForRun(runId, { timeoutMs: 15_000 })).toMatchObject({
      status: "completed",
      result: "graceful",
    });
  });

  it("exits after its drain timeout when a step never returns, and another worker finishes the run", async () => {
    // Prepare: only the stubborn worker runs, so it takes the hanging step.
    for (const other of workers) await other.stop();
    const stubborn = await worker("stubborn", { drainTimeoutMs: 300 });
    const { runId } = await client.start(crashing, ["hang-on-stop"]);
    await markerPid("hang-on-stop");
    // Act
    const exit = await stubborn.stop();
    await worker("takes-over");
    // Assess
    expect(exit).toBe(1);
    expect(stubborn.output()).toContain("did not finish within 300 ms; exiting");
    const run = await client.waitForRun(runId, { timeoutMs: 15_000 });
    expect(run).toMatchObject({
      status: "completed",
      result: { label: "hang-on-stop", worker: "takes-over" },
    });
  });

  it("runs a limited step's killed attempt again once the dead copy's lease ends, behind the earlier waiters, one at a time", async () => {
    // Prepare: two fresh workers; the victim's attempt of a step limited to 1 at a time holds the only slot.
    for (const other of workers) await other.stop();
    await Promise.all([worker("limit-a"), worker("limit-b")]);
    const { runId } = await client.start(exclusive, ["victim"]);
    const victimPid = await markerPid("victim");
    const victim = workers.find((w) => w.pid === victimPid) as WorkerProcess;
    expect(victim).toBeDefined();

    // Act: kill its worker; two more runs wait in line (on the worker left, which keeps their tasks).
    process.kill(victimPid, "SIGKILL");
    await victim.exited;
    appendFileSync(join(testDir, "exclusive.log"), `end victim ${victimPid} ${Date.now()}\n`);
    const waiters = [await client.start(exclusive, ["b"]), await client.start(exclusive, ["c"])];
    // BullMQ hands the job to the worker left, whose copy finds the slot held by the dead copy's lease.
    const jobId = stepJobId({ runId, stepId: "exclusive_call#0", attempt: 1 });
    await until("the job was handed over", async () => {
      const job = await client.queue.steps.getJob(jobId);
      return !job || (job.stalledCounter ?? 0) > 0 || (await job.getState()) !== "active";
    });
    await pause(500);
    // The dead copy's lease would end 60 s after its last renewal (not configurable in a worker process):
    // the test brings its end to 1 s from now, as time passing would.
    const leaseEnd = Date.now() + 1_000;
    const holders = `${prefix}slots:{step:exclusive_call:}:holders`;
    const holder = `${runId}/exclusive_call#0/1`;
    expect(await client.storage.client.zadd(holders, "XX", "CH", leaseEnd, holder)).toBe(1);
    const runs = await Promise.all(
      [runId, ...waiters.map((waiter) => waiter.runId)].map((id) =>
        client.waitForRun(id, { timeoutMs: 20_000 }),
      ),
    );

    // Assess: every run completed; the killed attempt ran again after the lease, behind b and c (in line
    // before it could take a place), soon after it (before, it waited for the sweeper: 5 minutes).
    expect(runs.map((run) => run.status)).toEqual(["completed", "completed", "completed"]);
    const marks = exclusiveMarks();
    const begins = marks.filter((mark) => mark.kind === "begin");
    expect(begins.map((mark) => mark.label).sort()).toEqual(["b", "c", "victim", "victim"]);
    const again = begins.at(-1);
    expect(again?.label).toBe("victim");
    expect(again?.pid).not.toBe(victimPid);
    expect(again?.at).toBeGreaterThanOrEqual(leaseEnd);
    expect((again?.at ?? Number.POSITIVE_INFINITY) - leaseEnd).toBeLessThan(10_000);
    // One copy at a time, the killed one counted until its worker died.
    expect(mostAtOnce(marks)).toBe(1);
  }, 60_000);

  // The workers' sweepers (staleAfterMs 300 s) cannot recover these runs within the tests' bounds (20 s).
  it("hands the attempts waiting for a slot on a worker killed with SIGKILL to another worker, in line, one at a time", async () => {
    // Prepare: the keeper, alone and one step at a time, holds the only slot with the gate's attempt.
    for (const other of workers) await other.stop();
    const keeper = await worker("keeper", { concurrency: 1 });
    const gate = await client.start(exclusive, ["gate"]);
    await markerPid("gate");
    // The keeper's step is busy: the waiters' step tasks go to the parker, where they wait for the slot.
    const parker = await worker("parker");
    const line = `${prefix}slots:{step:exclusive_call:}:line`;
    const waiters = [];
    for (const label of ["w1", "w2", "w3"]) {
      waiters.push(await client.start(exclusive, [label]));
      await until(
        `${label} waits in line`,
        async () => (await client.storage.client.zcard(line)) === waiters.length,
      );
    }
    await pause(1_500);

    // Act: kill the parker, then let the gate's attempt end.
    process.kill(parker.pid, "SIGKILL");
    await parker.exited;
    writeFileSync(join(testDir, "gate.open"), "");
    const runs = await Promise.all(
      [gate, ...waiters].map(({ runId }) => client.waitForRun(runId, { timeoutMs: 20_000 })),
    );

    // Assess: every run completed on the keeper, the waiters in the order they came, one at a time.
    expect(runs.map((run) => run.status)).toEqual(["completed", "completed", "completed", "completed"]);
    const marks = exclusiveMarks().filter((mark) => ["gate", "w1", "w2", "w3"].includes(mark.label));
    const begins = marks.filter((mark) => mark.kind === "begin");
    expect(begins.map((mark) => mark.label)).toEqual(["gate", "w1", "w2", "w3"]);
    expect(new Set(begins.map((mark) => mark.pid))).toEqual(new Set([keeper.pid]));
    expect(mostAtOnce(marks)).toBe(1);
  }, 60_000);

  it("sends the attempts waiting for their rate-limit turn on a worker killed with SIGKILL at their turns, from another worker", async () => {
    // Prepare: one worker; one start per 1.5 s: the first of three is granted, the two others wait for their turns.
    for (const other of workers) await other.stop();
    const parker = await worker("rate-parker");
    const { runId } = await client.start(slowRated, [["r1", "r2", "r3"]]);
    await until("the first attempt ended", async () =>
      (await client.getEvents(runId)).some((event) => event.type === "step_completed"),
    );
    // Nothing in flight any more (a job the kill interrupts would be handed over, and send the others again).
    await until("no job is in flight", async () => {
      const counts = await Promise.all(
        [client.queue.activations, client.queue.steps].map((queue) => queue.getJobCounts("active", "wait")),
      );
      return counts.every(({ active, wait }) => active === 0 && wait === 0);
    });

    // Act: kill it while the two others wait; another worker comes.
    process.kill(parker.pid, "SIGKILL");
    await parker.exited;
    const heir = await worker("rate-heir");
    const run = await client.waitForRun(runId, { timeoutMs: 20_000 });

    // Assess: each label started once, the last two on the heir, one start per period.
    expect(run).toMatchObject({ status: "completed", result: ["r1", "r2", "r3"] });
    const starts = logLines<[string, string, string]>("slow-rate.log").map(([label, pid, at]) => ({
      label,
      pid: Number(pid),
      at: Number(at),
    }));
    expect(starts.map((start) => start.label).sort()).toEqual(["r1", "r2", "r3"]);
    expect(starts.slice(1).map((start) => start.pid)).toEqual([heir.pid, heir.pid]);
    for (const [i, start] of starts.slice(1).entries())
      expect(start.at - (starts[i]?.at ?? 0)).toBeGreaterThanOrEqual(1_500);
  }, 60_000);
});
