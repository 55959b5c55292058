import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RedisUnavailableError } from "../../lib/adapters/redis/connection.ts";
import { RedisStorage } from "../../lib/adapters/redis/redis-storage.ts";
import {
  InvalidEventError,
  InvalidRunIdError,
  PayloadTooLargeError,
  VersionConflictError,
} from "../../lib/core/errors.ts";
import { MAX_PAYLOAD_BYTES } from "../../lib/core/serialization.ts";
import { workflow } from "../../lib/core/workflow.ts";
import {
  describeAppendOrderContract,
  describeClosedStoreContract,
  describeEventStoreContract,
  newRunFixture,
} from "../contract/event-store-contract.ts";
import { manualEngine } from "../core/support/manual-engine.ts";
import { freePort, type RedisServer, startRedisServer } from "./redis-server.ts";

const echoWorkflow = workflow("redis_storage_echo", async (value: string) => value);

let server: RedisServer;
let prefixes = 0;
const freshPrefix = () => `tsw-test-${process.pid}-${++prefixes}:`;

/** A storage on a fresh prefix, with one run created in it. */
async function storageWithRun(): Promise<{ storage: RedisStorage; runId: string }> {
  const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
  const fixture = newRunFixture();
  await storage.createRun(fixture);
  return { storage, runId: fixture.run.runId };
}

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

// Each test gets its own prefix, so tests never see each other's keys.
describeEventStoreContract("RedisStorage", {
  create: async () => new RedisStorage({ redis: server.url, prefix: freshPrefix() }),
});
describeAppendOrderContract("RedisStorage", {
  create: async () => new RedisStorage({ redis: server.url, prefix: freshPrefix() }),
});
describeClosedStoreContract("RedisStorage", {
  create: async () => new RedisStorage({ redis: server.url, prefix: freshPrefix() }),
  reopen: async (closed) => new RedisStorage({ redis: server.url, prefix: (closed as RedisStorage).prefix }),
});

describe("RedisStorage", () => {
  it("rejects run ids that could reach other keys", async () => {
    // Prepare
    const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
    try {
      // Act + Assess
      for (const runId of ["", "a:b", "run*", "../x", "a b", "x".repeat(129), "tsw:run:other"]) {
        await expect(storage.getRun(runId)).rejects.toBeInstanceOf(InvalidRunIdError);
        await expect(storage.getEvents(runId)).rejects.toBeInstanceOf(InvalidRunIdError);
      }
      await expect(storage.createRun(newRunFixture({ runId: "bad:id" }))).rejects.toBeInstanceOf(
        InvalidRunIdError,
      );
      expect(await storage.getRun("x".repeat(128))).toBeUndefined();
    } finally {
      await storage.close();
    }
  });

  it("refuses an invalid event and writes nothing", async () => {
    // Prepare
    const { storage, runId } = await storageWithRun();
    try {
      // Act
      const invalid = {
        runId,
        seq: 2,
        timestamp: "t",
        type: "step_completed",
        stepName: "s",
        attempt: 1,
      } as never;
      const misplaced = { runId, seq: 5, timestamp: "t", type: "workflow_completed", result: 1 } as const;
      // Assess
      await expect(
        storage.commit(runId, 1, [invalid], { status: "running", updatedAt: "t" }),
      ).rejects.toThrow(/stepId/);
      await expect(
        storage.commit(runId, 1, [misplaced], { status: "running", updatedAt: "t" }),
      ).rejects.toBeInstanceOf(InvalidEventError);
      expect(await storage.getEvents(runId)).toHaveLength(1);
    } finally {
      await storage.close();
    }
  });

  it("reports a corrupted log entry as an InvalidEventError naming the run", async () => {
    // Prepare
    const prefix = freshPrefix();
    const storage = new RedisStorage({ redis: server.url, prefix });
    const fixture = newRunFixture();
    await storage.createRun(fixture);
    await storage.client.rpush(
      `${prefix}events:${fixture.run.runId}`,
      JSON.stringify({ type: "nope", seq: 2 }),
    );
    try {
      // Act + Assess
      await expect(storage.getEvents(fixture.run.runId)).rejects.toThrow(
        new RegExp(`run ${fixture.run.runId} \\(event 2\\)`),
      );
    } finally {
      await storage.close();
    }
  });

  it("declares maxPayloadBytes as its limit, and the engine refuses a larger workflow input before storing anything", async () => {
    // Prepare
    const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix(), maxPayloadBytes: 1_000 });
    const defaults = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
    const { engine } = manualEngine({ store: storage });
    try {
      // Act
      const started = engine.start(echoWorkflow, ["x".repeat(2_000)]);
      // Assess
      expect(storage.limits).toEqual({ maxPayloadBytes: 1_000 });
      expect(defaults.limits).toEqual({ maxPayloadBytes: MAX_PAYLOAD_BYTES });
      await expect(started).rejects.toBeInstanceOf(PayloadTooLargeError);
      expect((await storage.listRuns()).runs).toEqual([]);
    } finally {
      await storage.close();
      await defaults.close();
    }
  });

  it("keeps an outcome answerable but no longer pending once its event is committed", async () => {
    // Prepare
    const { storage, runId } = await storageWithRun();
    const outcome = {
      runId,
      stepId: "s#0",
      attempt: 1,
      recordedAt: "2026-01-01T00:00:00.000Z",
      ok: true as const,
      result: 7,
    };
    await storage.putOutcome(outcome);
    try {
      // Act
      const committed = await storage.commit(
        runId,
        1,
        [
          {
            runId,
            seq: 2,
            timestamp: "t",
            type: "step_completed",
            stepId: "s#0",
            stepName: "s",
            attempt: 1,
            result: 7,
          },
        ],
        { status: "running", updatedAt: "t" },
      );
      // Assess
      expect(committed).toEqual({ pendingOutcomes: false });
      expect(await storage.listOutcomes(runId)).toEqual([]);
      expect(await storage.getOutcome(runId, "s#0", 1)).toEqual(outcome);
      expect(await storage.putOutcome({ ...outcome, result: 8 })).toBe(false);
      expect(await storage.listOutcomes(runId)).toEqual([]);
    } finally {
      await storage.close();
    }
  });

  it("says whether outcomes are still waiting after a commit", async () => {
    // Prepare
    const { storage, runId } = await storageWithRun();
    const recordedAt = "2026-01-01T00:00:00.000Z";
    try {
      // Act
      const before = await storage.commit(runId, 1, [], { status: "running", updatedAt: "t1" });
      await storage.putOutcome({ runId, stepId: "$cancel", attempt: 1, recordedAt, ok: true, result: {} });
      const after = await storage.commit(runId, 1, [], { status: "running", updatedAt: "t2" });
      // Assess
      expect(before).toEqual({ pendingOutcomes: false });
      expect(after).toEqual({ pendingOutcomes: true });
    } finally {
      await storage.close();
    }
  });

  it("sends the commits made in one turn of the event loop in one call, each applied or refused on its own", async () => {
    // Prepare
    const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
    const fixtures = [newRunFixture(), newRunFixture(), newRunFixture()];
    for (const fixture of fixtures) await storage.createRun(fixture);
    const [a, b, c] = fixtures.map((fixture) => fixture.run.runId) as [string, string, string];
    const event = (runId: string) => ({
      runId,
      seq: 2,
      timestamp: "t",
      type: "step_completed" as const,
      stepId: "s#0",
      stepName: "s",
      attempt: 1,
      result: runId,
    });
    const sent = vi.spyOn(storage.client, "sendCommand");
    try {
      // Act: b's commit expects a version its log does not have.
      const results = await Promise.allSettled([
        storage.commit(a, 1, [event(a)], { status: "running", updatedAt: "ta" }),
        storage.commit(b, 2, [{ ...event(b), seq: 3 }], { status: "running", updatedAt: "tb" }),
        storage.commit(c, 1, [event(c)], {
          status: "completed",
          updatedAt: "tc",
          result: "done",
          tags: { team: "a" },
        }),
      ]);
      // Assess (a first call may load the script before it runs)
      expect(sent.mock.calls.filter(([command]) => command.name === "evalsha")).toHaveLength(1);
      expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
      expect((await storage.getEvents(a)).map((e) => e.seq)).toEqual([1, 2]);
      expect((await storage.getRun(b))?.version).toBe(1);
      expect(await storage.getRun(c)).toMatchObject({ status: "completed", result: "done", version: 2 });
      expect((await storage.listRuns({ status: "completed" })).runs.map((run) => run.runId)).toEqual([c]);
      expect((await storage.listRuns({ tags: { team: "a" } })).runs.map((run) => run.runId)).toEqual([c]);
    } finally {
      sent.mockRestore();
      await storage.close();
    }
  });

  it("sends a commit asked for right before close", async () => {
    // Prepare
    const { storage, runId } = await storageWithRun();
    const reader = new RedisStorage({ redis: server.url, prefix: storage.prefix });
    // The commit script is loaded on first use: this one loads it.
    await storage.commit(runId, 1, [], { status: "running", updatedAt: "t0" });
    try {
      // Act
      const committed = storage.commit(runId, 1, [], { status: "completed", updatedAt: "t1", result: 1 });
      const closed = storage.close();
      // Assess
      await expect(committed).resolves.toEqual({ pendingOutcomes: false });
      await closed;
      expect(await reader.getRun(runId)).toMatchObject({ status: "completed", result: 1 });
    } finally {
      await reader.close();
    }
  });

  describe("after an inline step, with the run's lease wrapped by activation", () => {
    const recordedAt = "2026-01-01T00:00:00.000Z";
    const lease = { pause() {}, resume: async () => true };
    const inlineStep = (runId: string) => ({
      runId,
      workflowName: "w",
      stepId: "s#2",
      stepName: "s",
      attempt: 1,
      input: [],
    });
    const completed = (runId: string, seq: number) => ({
      runId,
      seq,
      timestamp: "t",
      type: "step_completed" as const,
      stepId: `s#${seq}`,
      stepName: "s",
      attempt: 1,
      result: seq,
    });

    it("lists no outcomes without reading them, and commits when none waits", async () => {
      // Prepare
      const { storage, runId } = await storageWithRun();
      const activation = storage.activation(runId, lease);
      const guarded = activation.lease;
      try {
        await storage.commit(runId, 1, [], { status: "running", updatedAt: "t1" });
        guarded.pause(inlineStep(runId));
        // Act
        expect(await guarded.resume()).toBe(true);
        const listed = await storage.listOutcomes(runId);
        const committed = await storage.commit(runId, 1, [completed(runId, 2)], {
          status: "running",
          updatedAt: "t2",
        });
        // Assess
        expect(listed).toEqual([]);
        expect(committed).toEqual({ pendingOutcomes: false });
        expect((await storage.getRun(runId))?.version).toBe(2);
      } finally {
        activation.end();
        await storage.close();
      }
    });

    it("refuses the commit when an outcome was stored during the step, and lists it on the next read", async () => {
      // Prepare
      const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
      const other = new RedisStorage({ redis: server.url, prefix: storage.prefix });
      const fixture = newRunFixture();
      const runId = fixture.run.runId;
      await storage.createRun(fixture);
      const activation = storage.activation(runId, lease);
      const guarded = activation.lease;
      const cancel = { runId, stepId: "$cancel", attempt: 1, recordedAt, ok: true as const, result: {} };
      try {
        await storage.commit(runId, 1, [], { status: "running", updatedAt: "t1" });
        guarded.pause(inlineStep(runId));
        // Act: another process stores a cancellation while the step runs.
        await other.putOutcome(cancel);
        await guarded.resume();
        const listed = await storage.listOutcomes(runId);
        const refused = storage.commit(runId, 1, [completed(runId, 2)], {
          status: "running",
          updatedAt: "t2",
        });
        // Assess
        expect(listed).toEqual([]);
        await expect(refused).rejects.toBeInstanceOf(VersionConflictError);
        expect((await storage.getRun(runId))?.version).toBe(1);
        expect(await storage.listOutcomes(runId)).toEqual([cancel]);
      } finally {
        activation.end();
        await Promise.all([storage.close(), other.close()]);
      }
    });

    it("reads the outcomes as usual when its last commit saw some waiting", async () => {
      // Prepare
      const { storage, runId } = await storageWithRun();
      const activation = storage.activation(runId, lease);
      const guarded = activation.lease;
      const signal = {
        runId,
        stepId: "$signal:paid:1",
        attempt: 1,
        recordedAt,
        ok: true as const,
        result: { name: "paid", payload: 1 },
      };
      try {
        await storage.putOutcome(signal);
        await storage.commit(runId, 1, [], { status: "running", updatedAt: "t1" });
        guarded.pause(inlineStep(runId));
        // Act
        await guarded.resume();
        const listed = await storage.listOutcomes(runId);
        const committed = await storage.commit(runId, 1, [completed(runId, 2)], {
          status: "running",
          updatedAt: "t2",
        });
        // Assess
        expect(listed).toEqual([signal]);
        expect(committed).toEqual({ pendingOutcomes: true });
      } finally {
        activation.end();
        await storage.close();
      }
    });

    it("reads the run, its new log entries and its waiting outcomes in one round trip when an activation begins", async () => {
      // Prepare
      const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
      const fixture = newRunFixture();
      const runId = fixture.run.runId;
      await storage.createRun(fixture);
      await storage.commit(runId, 1, [completed(runId, 2)], { status: "running", updatedAt: "t1" });
      const cancel = { runId, stepId: "$cancel", attempt: 1, recordedAt, ok: true as const, result: {} };
      await storage.putOutcome(cancel);
      const plain = { run: await storage.getRun(runId), events: await storage.getEvents(runId) };
      await storage.commit(runId, 2, [completed(runId, 3)], { status: "running", updatedAt: "t2" });
      const sent = vi.spyOn(storage.client, "sendCommand");
      const activation = storage.activation(runId, lease);
      try {
        // Act
        const run = await storage.getRun(runId);
        const events = await storage.getEvents(runId);
        const outcomes = await storage.listOutcomes(runId);
        // Assess
        expect(sent).toHaveBeenCalledTimes(1);
        expect(run).toEqual({ ...plain.run, version: 3, updatedAt: "t2" });
        expect(events).toEqual([...plain.events, completed(runId, 3)]);
        expect(outcomes).toEqual([cancel]);
      } finally {
        activation.end();
        sent.mockRestore();
        await storage.close();
      }
    });

    it("reads again what the activation did not take once it ended", async () => {
      // Prepare
      const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
      const fixture = newRunFixture();
      const runId = fixture.run.runId;
      await storage.createRun(fixture);
      const activation = storage.activation(runId, lease);
      await storage.getRun(runId);
      activation.end();
      const cancel = { runId, stepId: "$cancel", attempt: 1, recordedAt, ok: true as const, result: {} };
      try {
        // Act: the log and the outcomes change after the activation.
        await storage.commit(runId, 1, [completed(runId, 2)], { status: "running", updatedAt: "t1" });
        await storage.putOutcome(cancel);
        const events = await storage.getEvents(runId);
        const outcomes = await storage.listOutcomes(runId);
        // Assess
        expect(events.map((event) => event.seq)).toEqual([1, 2]);
        expect(outcomes).toEqual([cancel]);
      } finally {
        await storage.close();
      }
    });

    it("reads the outcomes as usual when the lease was not taken back after a step", async () => {
      // Prepare
      const { storage, runId } = await storageWithRun();
      const activation = storage.activation(runId, lease);
      const cancel = { runId, stepId: "$cancel", attempt: 1, recordedAt, ok: true as const, result: {} };
      try {
        await storage.commit(runId, 1, [], { status: "running", updatedAt: "t1" });
        // Act: an activation of the run that did not just run a step inline.
        await storage.putOutcome(cancel);
        const listed = await storage.listOutcomes(runId);
        // Assess
        expect(listed).toEqual([cancel]);
      } finally {
        activation.end();
        await storage.close();
      }
    });
  });

  it("moves a run between status indexes and clears a field the patch unsets", async () => {
    // Prepare
    const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
    const fixture = newRunFixture({ workflowName: "moving" });
    const runId = fixture.run.runId;
    await storage.createRun(fixture);
    try {
      // Act
      await storage.commit(runId, 1, [], {
        status: "failed",
        updatedAt: "t1",
        error: { name: "Error", message: "x" },
      });
      await storage.commit(runId, 1, [], { status: "running", updatedAt: "t2", error: undefined });
      // Assess
      expect((await storage.listRuns({ status: "failed" })).runs).toEqual([]);
      expect(
        (await storage.listRuns({ status: "running", workflowName: "moving" })).runs.map((r) => r.runId),
      ).toEqual([runId]);
      const run = await storage.getRun(runId);
      expect(run).toMatchObject({ status: "running", updatedAt: "t2", version: 1 });
      expect(run).not.toHaveProperty("error");
    } finally {
      await storage.close();
    }
  });

  it("lists every run when the limit is Number.MAX_SAFE_INTEGER (as recover() asks)", async () => {
    // Prepare
    const storage = new RedisStorage({ redis: server.url, prefix: freshPrefix() });
    const fixtures = [newRunFixture(), newRunFixture(), newRunFixture()];
    for (const fixture of fixtures) await storage.createRun(fixture);
    try {
      // Act
      const { runs } = await storage.listRuns({ status: "pending", limit: Number.MAX_SAFE_INTEGER });
      // Assess
      expect(runs.map((run) => run.runId).sort()).toEqual(fixtures.map((f) => f.run.runId).sort());
      expect((await storage.listRuns({ limit: 0 })).runs).toEqual([]);
    } finally {
      await storage.close();
    }
  });

  it("works on a client the caller owns and leaves it open on close", async () => {
    // Prepare
    const client = new Redis(server.url);
    const storage = new RedisStorage({ redis: client, prefix: freshPrefix() });
    const fixture = newRunFixture();
    // Act
    await storage.createRun(fixture);
    await storage.close();
    // Assess
    expect(await client.ping()).toBe("PONG");
    await client.quit();
  });

  it("names the URL when Redis is unreachable", async () => {
    // Prepare
    const port = await freePort();
    const storage = new RedisStorage({
      redis: `redis://user:secret@127.0.0.1:${port}`,
      prefix: freshPrefix(),
    });
    try {
      // Act
      const failure = await storage.getRun("run_1").catch((error: unknown) => error);
      // Assess
      expect(failure).toBeInstanceOf(RedisUnavailableError);
      expect((failure as Error).message).toContain(`redis://user:***@127.0.0.1:${port}`);
      expect((failure as Error).message).not.toContain("secret");
      expect((failure as Error).message).toMatch(/ECONNREFUSED/);
    } finally {
      await storage.close();
    }
  });
});
