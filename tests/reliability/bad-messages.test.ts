/**
 * Queue messages that are not valid tasks, activations of runs whose workflow this worker does not
 * know, and a run log edited by hand in Redis: on Redis (BullMQ jobs) and on SQS (the real Lambda
 * handlers behind the harness's event source mapping, over fauxqs). Each is dropped with an error log,
 * retried and then dead-lettered, or (a run whose workflow this worker lacks) put back for code that has
 * it, and the worker keeps serving other runs.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  configureLogging,
  type RunRecord,
  sleep,
  step,
  type WorkflowDefinition,
  type WorkflowEvent,
  WorkflowInputError,
  workflow,
} from "tsworkflow";
import { createRedisRuntime, type RedisRuntime, type RedisServer, startRedisServer } from "tsworkflow/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../aws/harness/wait.ts";
import { type SqsKit, startSqsKit } from "./support/sqs-kit.ts";

let logDir: string;
let logFile: string;

type LogLine = { level: string; message: string; runId?: string; error?: { message?: string } };

/** The error and warning lines logged so far, parsed. */
function logged(): LogLine[] {
  return readFileSync(logFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

/**
 * The logged lines that `match`, once there are `count` of them at least: the logger writes to its file
 * through a stream, so a line may land a moment after what the test waited for (a job in the failed set, a
 * message in a DLQ).
 */
function loggedAtLeast(count: number, what: string, match: (line: LogLine) => boolean): Promise<LogLine[]> {
  return waitFor(what, () => {
    const lines = logged().filter(match);
    return lines.length >= count ? lines : undefined;
  });
}

beforeAll(() => {
  logDir = mkdtempSync(join(tmpdir(), "tsw-bad-messages-"));
  logFile = join(logDir, "log.jsonl");
  configureLogging({ level: "warning", logFile, jsonLogs: true });
});

afterAll(() => {
  configureLogging();
  rmSync(logDir, { recursive: true, force: true });
});

let transfers = 0;
const transfer = step("badmsg_transfer", async (cents: number) => {
  transfers += 1;
  return { transferred: cents };
});
const payout = workflow("badmsg_payout", async (cents: number) => transfer(cents));
const napping = workflow("badmsg_napping", async (cents: number) => {
  await sleep("300ms");
  return transfer(cents);
});

describe("bad jobs on Redis", () => {
  let server: RedisServer;
  let runtime: RedisRuntime;

  beforeAll(async () => {
    server = await startRedisServer();
    runtime = createRedisRuntime({ url: server.url, prefix: "badmsg:", concurrency: 4 });
    await runtime.startWorker();
  });

  afterAll(async () => {
    await runtime?.close();
    await server?.stop();
  });

  it("fails jobs whose data is not a task into BullMQ's failed set, logging why, and keeps serving runs", async () => {
    // Prepare
    transfers = 0;
    const activations = [{}, "garbage", { runId: "../x", cause: { kind: "start" } }, { runId: "a}:{b" }];
    const steps = [
      {},
      { runId: "IDEM#x", stepName: "badmsg_transfer", stepId: "s#0", attempt: 1, input: [1] },
    ];
    // Act
    for (const data of activations) await runtime.queue.activations.add("activate", data);
    for (const data of steps) await runtime.queue.steps.add("step", data);
    const { runId } = await runtime.start(payout, [7]);
    const run = await runtime.waitForRun(runId, { timeoutMs: 20_000 });
    const failed = await waitFor("the bad jobs to fail", async () => {
      const [a, s] = await Promise.all([
        runtime.queue.activations.getFailed(),
        runtime.queue.steps.getFailed(),
      ]);
      return a.length === activations.length && s.length === steps.length ? [...a, ...s] : undefined;
    });
    // Assess
    expect(run.status).toBe("completed");
    expect(transfers).toBe(1);
    for (const job of failed) expect(job.failedReason).toContain("Invalid run id");
    const lines = await loggedAtLeast(activations.length + steps.length, "the failures logged", (line) =>
      line.message.startsWith("job failed for good after 1 attempts"),
    );
    expect(lines).toHaveLength(activations.length + steps.length);
    expect(lines.every((line) => line.level === "ERROR" && line.message.includes("Invalid run id"))).toBe(
      true,
    );
  });

  it("puts back the activation of a run whose workflow this worker lacks, and runs it once the workflow is registered", async () => {
    // Prepare: a run of a workflow no module of this process has defined yet.
    const at = new Date().toISOString();
    const runId = `run_badmsg_${randomUUID().slice(0, 8)}`;
    const started: WorkflowEvent = {
      runId,
      seq: 1,
      timestamp: at,
      type: "workflow_started",
      workflowName: "badmsg_late",
      input: [3],
    };
    const record: RunRecord = {
      runId,
      workflowName: "badmsg_late",
      status: "pending",
      input: [3],
      createdAt: at,
      updatedAt: at,
      version: 1,
    };
    await runtime.storage.createRun({ run: record, startedEvent: started });
    // Act
    await runtime.queue.enqueueActivation({ runId, cause: { kind: "start" } });
    await waitFor("the activation put back", () =>
      logged().find(
        (line) => line.runId === runId && line.message.includes('run waits for workflow "badmsg_late"'),
      ),
    );
    const other = await runtime.start(payout, [8]);
    const served = await runtime.waitForRun(other.runId, { timeoutMs: 20_000 });
    const waiting = await runtime.getRun(runId);
    const late: WorkflowDefinition<[number], number> = workflow("badmsg_late", async (n: number) => n * 2);
    const run = await runtime.waitForRun(runId, { timeoutMs: 20_000 });
    // Assess
    expect(served.status).toBe("completed");
    expect(waiting?.status).toBe("pending");
    expect(run.status).toBe("completed");
    expect(run.workflowName).toBe(late.name);
    expect(run.result).toBe(6);
    // Put back, not failed: one warning, no failed attempt.
    const lines = logged().filter((line) => line.runId === runId);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.level).toBe("WARN");
    expect(lines[0]?.message).toMatch(
      /^run waits for workflow "badmsg_late", which this worker does not register: its activation is put back/,
    );
  });

  it("fails the activations of a run whose log was edited by hand into an invalid event, and serves the others", async () => {
    // Prepare
    const { runId } = await runtime.start(napping, [9]);
    await waitFor("the run to sleep", async () =>
      (await runtime.getRun(runId))?.status === "suspended" ? true : undefined,
    );
    await runtime.storage.client.lset(`badmsg:events:${runId}`, 1, JSON.stringify({ type: "step_exploded" }));
    // As on another worker, or after a restart: the run is read back from Redis, not resumed from memory.
    runtime.engine.clearCache();
    // Act
    const other = await runtime.start(payout, [10]);
    const served = await runtime.waitForRun(other.runId, { timeoutMs: 20_000 });
    const complaint = await waitFor("the failed activation of the edited run", () =>
      logged().find((line) => line.runId === runId && line.message.includes("Invalid event")),
    );
    // Assess
    expect(served.status).toBe("completed");
    expect(complaint.message).toContain(`Invalid event in run ${runId} (event 2)`);
    expect(complaint.message).toContain("edited by hand");
    expect((await runtime.getRun(runId))?.status).toBe("suspended");
  });
});

describe("bad messages on SQS", () => {
  let kit: SqsKit;

  beforeAll(async () => {
    kit = await startSqsKit([payout], { visibilityTimeoutSeconds: 1, maxReceiveCount: 2 });
  });

  afterAll(async () => {
    await kit?.stop();
  });

  it("sends bodies that are not tsworkflow messages and tasks naming a malformed run id to the dead-letter queues, logging why, and serves runs", async () => {
    // Prepare
    transfers = 0;
    const poison = {
      workflow: ["not json", '{"kind":"nonsense"}', JSON.stringify({ kind: "step", task: { runId: "r" } })],
      step: ["{{", JSON.stringify({ kind: "step", task: { runId: "r", stepId: "s#0" } })],
    };
    const malformedRunId = {
      workflow: JSON.stringify({ kind: "activation", task: { runId: "../x", cause: { kind: "start" } } }),
      step: JSON.stringify({
        kind: "step",
        task: {
          runId: "a}:{b",
          workflowName: "w",
          stepId: "s#0",
          stepName: "badmsg_transfer",
          attempt: 1,
          input: [1],
        },
      }),
    };
    // Act
    for (const body of [...poison.workflow, malformedRunId.workflow])
      await kit.sendToWorkflowQueue(body, `bad-${randomUUID()}`);
    for (const body of [...poison.step, malformedRunId.step]) await kit.sendToStepQueue(body);
    const { runId } = await kit.start("badmsg_payout", [11]);
    const run = await waitFor("the good run to complete", async () => {
      const current = await kit.store.getRun(runId);
      return current?.status === "completed" ? current : undefined;
    });
    const expected = [...poison.workflow, ...poison.step, malformedRunId.workflow, malformedRunId.step];
    const dead = await waitFor("every bad message in the dead-letter queues", () => {
      const workflowDlq =
        kit.sqs.server.inspectQueue(deadLetterName(kit.queues.workflowDlqUrl))?.messages.ready ?? [];
      const stepDlq =
        kit.sqs.server.inspectQueue(deadLetterName(kit.queues.stepDlqUrl))?.messages.ready ?? [];
      return workflowDlq.length + stepDlq.length === expected.length
        ? [...workflowDlq, ...stepDlq]
        : undefined;
    });
    // Assess: nothing is deleted unread; each message is kept for a look in a DLQ.
    expect(run.result).toEqual({ transferred: 11 });
    expect(transfers).toBe(1);
    expect(dead.map((message) => message.body).sort()).toEqual(expected.sort());
    const deadLettered = await loggedAtLeast(
      poison.workflow.length + poison.step.length,
      "the poison messages logged",
      (line) => line.message.includes("goes to the dead-letter queue"),
    );
    for (const line of deadLettered) expect(line.error?.message).toMatch(/^A (queue message|step message)/);
  });
  it("retries the activation of a run whose workflow the function lacks, then dead-letters it, and serves runs", async () => {
    // Prepare: a run of a workflow this bundle does not register.
    const at = new Date().toISOString();
    const runId = `run_badmsg_${randomUUID().slice(0, 8)}`;
    await kit.store.createRun({
      run: {
        runId,
        workflowName: "badmsg_elsewhere",
        status: "pending",
        input: [],
        createdAt: at,
        updatedAt: at,
        version: 1,
      },
      startedEvent: {
        runId,
        seq: 1,
        timestamp: at,
        type: "workflow_started",
        workflowName: "badmsg_elsewhere",
        input: [],
      },
    });
    const activation = JSON.stringify({ kind: "activation", task: { runId, cause: { kind: "start" } } });
    // Act
    await kit.sendToWorkflowQueue(activation, runId);
    const { runId: other } = await kit.start("badmsg_payout", [12]);
    const served = await waitFor("the other run to complete", async () => {
      const current = await kit.store.getRun(other);
      return current?.status === "completed" ? current : undefined;
    });
    const dead = await waitFor("the activation in the dead-letter queue", () => {
      const messages =
        kit.sqs.server.inspectQueue(deadLetterName(kit.queues.workflowDlqUrl))?.messages.ready ?? [];
      return messages.find((message) => message.body === activation);
    });
    // Assess
    expect(served.result).toEqual({ transferred: 12 });
    expect(dead.body).toBe(activation);
    expect((await kit.store.getRun(runId))?.status).toBe("pending");
    // A deploy half done is the likely cause: retried with backoff, then kept in the DLQ.
    const failures = await loggedAtLeast(
      2,
      "the retries logged",
      (line) => line.runId === runId && line.message.startsWith("workflow not in this code"),
    );
    expect(failures[0]?.error?.message).toContain('No workflow named "badmsg_elsewhere"');
  });

  it("retries an activation that fails with an input error of tsworkflow's own: only an invalid message is poison", async () => {
    // Prepare: the store refuses the first read of the run with a WorkflowInputError (code INVALID_INPUT).
    const { runId } = await kit.start("badmsg_payout", [13]);
    const getRun = kit.store.getRun.bind(kit.store);
    let refused = 0;
    kit.store.getRun = async (id: string) => {
      if (id === runId && refused === 0) {
        refused += 1;
        throw new WorkflowInputError("badmsg_payout", [{ path: "0", message: "refused once" }]);
      }
      return getRun(id);
    };
    try {
      // Act
      const run = await waitFor("the run to complete", async () => {
        const current = await getRun(runId);
        return current?.status === "completed" ? current : undefined;
      });
      // Assess
      expect(refused).toBe(1);
      expect(run.result).toEqual({ transferred: 13 });
    } finally {
      kit.store.getRun = getRun;
    }
  });
});

/** The queue name at the end of its URL. */
const deadLetterName = (url: string) => url.split("/").at(-1) as string;
