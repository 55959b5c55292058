import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  InvalidRunIdError,
  InvalidRunQueryError,
  StorageClosedError,
  VersionConflictError,
} from "../../lib/core/errors.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import type { EventStore, NewRun, RunQuery, RunRecord } from "../../lib/ports/event-store.ts";
import { inboxIds } from "../../lib/ports/inbox.ts";
import { describePayloadLimitsContract } from "./payload-limits-contract.ts";

/** Makes a fresh, empty store for each test; `cleanup` runs after it is closed. */
export interface StoreHarness {
  create(): Promise<EventStore>;
  cleanup?(): Promise<void>;
}

let counter = 0;
export function newRunFixture(overrides: Partial<RunRecord> = {}): NewRun {
  counter += 1;
  const runId = overrides.runId ?? `run_contract_${Date.now().toString(36)}_${counter}`;
  const createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, counter % 60)).toISOString();
  const run: RunRecord = {
    runId,
    workflowName: "contract_wf",
    status: "pending",
    input: ["user_1", { n: 1 }],
    createdAt,
    updatedAt: createdAt,
    version: 1,
    ...overrides,
  };
  const startedEvent: WorkflowEvent = {
    runId,
    seq: 1,
    timestamp: createdAt,
    type: "workflow_started",
    workflowName: run.workflowName,
    input: run.input,
    ...(run.idempotencyKey ? { idempotencyKey: run.idempotencyKey } : {}),
  };
  return { run, startedEvent };
}

function stepEvents(runId: string, fromSeq: number, stepId: string): WorkflowEvent[] {
  const timestamp = new Date().toISOString();
  return [
    { runId, seq: fromSeq, timestamp, type: "step_started", stepId, stepName: "s", attempt: 1, input: [1] },
    {
      runId,
      seq: fromSeq + 1,
      timestamp,
      type: "step_completed",
      stepId,
      stepName: "s",
      attempt: 1,
      result: { ok: 1 },
    },
  ];
}

/** A new run in `store` with one step done (its version is 3). */
async function runWithOneStep(store: EventStore): Promise<NewRun> {
  const fixture = newRunFixture();
  const runId = fixture.run.runId;
  await store.createRun(fixture);
  await store.commit(runId, 1, stepEvents(runId, 2, "s#0"), {
    status: "running",
    updatedAt: fixture.run.createdAt,
  });
  return fixture;
}

/** A fresh store from `harness` for each test of the enclosing describe, closed and cleaned up after it. */
function storePerTest(harness: StoreHarness): () => EventStore {
  let store: EventStore;
  beforeEach(async () => {
    store = await harness.create();
  });
  afterEach(async () => {
    await store.close();
    await harness.cleanup?.();
  });
  return () => store;
}

/** The contract every EventStore adapter passes. */
export function describeEventStoreContract(name: string, harness: StoreHarness): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    const current = storePerTest(harness);
    beforeEach(() => {
      store = current();
    });

    it("creates a run and reads it back with its first event", async () => {
      // Prepare
      const fixture = newRunFixture();
      // Act
      const created = await store.createRun(fixture);
      // Assess
      expect(created.created).toBe(true);
      const run = await store.getRun(fixture.run.runId);
      expect(run).toMatchObject({
        runId: fixture.run.runId,
        workflowName: "contract_wf",
        status: "pending",
        input: ["user_1", { n: 1 }],
        version: 1,
      });
      expect(await store.getEvents(fixture.run.runId)).toEqual([fixture.startedEvent]);
    });

    it("returns nothing for an unknown run", async () => {
      expect(await store.getRun("run_does_not_exist")).toBeUndefined();
      expect(await store.getEvents("run_does_not_exist")).toEqual([]);
    });

    it("appends commits in order and applies the run patch", async () => {
      const fixture = newRunFixture();
      const runId = fixture.run.runId;
      await store.createRun(fixture);
      await store.commit(runId, 1, stepEvents(runId, 2, "s#0"), {
        status: "running",
        updatedAt: "2026-01-02T00:00:00.000Z",
      });
      await store.commit(
        runId,
        3,
        [
          {
            runId,
            seq: 4,
            timestamp: "2026-01-02T00:00:01.000Z",
            type: "workflow_completed",
            result: "done",
          },
        ],
        {
          status: "completed",
          updatedAt: "2026-01-02T00:00:01.000Z",
          result: "done",
        },
      );
      const events = await store.getEvents(runId);
      expect(events.map((e) => [e.seq, e.type])).toEqual([
        [1, "workflow_started"],
        [2, "step_started"],
        [3, "step_completed"],
        [4, "workflow_completed"],
      ]);
      expect(await store.getRun(runId)).toMatchObject({
        status: "completed",
        result: "done",
        version: 4,
        updatedAt: "2026-01-02T00:00:01.000Z",
      });
    });

    it("rejects a commit that does not expect the current version", async () => {
      const fixture = await runWithOneStep(store);
      const runId = fixture.run.runId;
      await expect(
        store.commit(runId, 1, stepEvents(runId, 2, "s#1"), {
          status: "running",
          updatedAt: fixture.run.createdAt,
        }),
      ).rejects.toBeInstanceOf(VersionConflictError);
      expect((await store.getEvents(runId)).map((e) => e.seq)).toEqual([1, 2, 3]);
    });

    it("lets exactly one of many racing commits at the same version win", async () => {
      const fixture = newRunFixture();
      const runId = fixture.run.runId;
      await store.createRun(fixture);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          store.commit(runId, 1, stepEvents(runId, 2, `s#${i}`), {
            status: "running",
            updatedAt: fixture.run.createdAt,
          }),
        ),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results)
        if (r.status === "rejected") expect(r.reason).toBeInstanceOf(VersionConflictError);
      expect(await store.getEvents(runId)).toHaveLength(3);
    });

    it("returns the existing run for a taken idempotency key and creates nothing", async () => {
      const first = newRunFixture({ idempotencyKey: `key-${counter}-${Date.now()}` });
      const second = newRunFixture({ idempotencyKey: first.run.idempotencyKey as string });
      expect((await store.createRun(first)).created).toBe(true);
      const again = await store.createRun(second);
      expect(again.created).toBe(false);
      expect(again.run.runId).toBe(first.run.runId);
      expect(await store.getRun(second.run.runId)).toBeUndefined();
    });

    it("gives one run to 50 concurrent creates with one idempotency key", async () => {
      const key = `concurrent-${Date.now()}-${counter}`;
      const results = await Promise.all(
        Array.from({ length: 50 }, () => store.createRun(newRunFixture({ idempotencyKey: key }))),
      );
      const runIds = new Set(results.map((r) => r.run.runId));
      expect(runIds.size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
    });

    it("stores a step outcome once and ignores a duplicate", async () => {
      const fixture = newRunFixture();
      const runId = fixture.run.runId;
      await store.createRun(fixture);
      const outcome = {
        runId,
        stepId: "charge#0",
        attempt: 1,
        recordedAt: new Date().toISOString(),
        ok: true as const,
        result: { id: 7 },
      };
      expect(await store.putOutcome(outcome)).toBe(true);
      expect(await store.putOutcome({ ...outcome, result: { id: 8 } })).toBe(false);
      expect(await store.getOutcome(runId, "charge#0", 1)).toMatchObject({ ok: true, result: { id: 7 } });
      expect(await store.getOutcome(runId, "charge#0", 2)).toBeUndefined();
      const failed = {
        runId,
        stepId: "charge#0",
        attempt: 2,
        recordedAt: new Date().toISOString(),
        ok: false as const,
        error: { name: "Error", message: "boom" },
      };
      expect(await store.putOutcome(failed)).toBe(true);
      const listed = await store.listOutcomes(runId);
      expect(listed.map((o) => [o.stepId, o.attempt, o.ok])).toEqual([
        ["charge#0", 1, true],
        ["charge#0", 2, false],
      ]);
    });

    it("lists runs newest first, filtered by status and workflow, with a limit", async () => {
      const a = newRunFixture({ workflowName: "alpha", createdAt: "2026-02-01T00:00:00.000Z" });
      const b = newRunFixture({ workflowName: "beta", createdAt: "2026-02-02T00:00:00.000Z" });
      const c = newRunFixture({ workflowName: "alpha", createdAt: "2026-02-03T00:00:00.000Z" });
      for (const f of [a, b, c]) await store.createRun(f);
      await store.commit(
        c.run.runId,
        1,
        [
          {
            runId: c.run.runId,
            seq: 2,
            timestamp: "2026-02-03T00:00:01.000Z",
            type: "workflow_completed",
            result: 1,
          },
        ],
        {
          status: "completed",
          updatedAt: "2026-02-03T00:00:01.000Z",
          result: 1,
        },
      );
      const ids = (runs: RunRecord[]) => runs.map((r) => r.runId);
      const mine = new Set([a.run.runId, b.run.runId, c.run.runId]);
      const all = (await store.listRuns({ limit: 1000 })).runs.filter((r) => mine.has(r.runId));
      expect(ids(all)).toEqual([c.run.runId, b.run.runId, a.run.runId]);
      const alpha = (await store.listRuns({ workflowName: "alpha", limit: 1000 })).runs.filter((r) =>
        mine.has(r.runId),
      );
      expect(ids(alpha)).toEqual([c.run.runId, a.run.runId]);
      const completed = (await store.listRuns({ status: "completed", limit: 1000 })).runs.filter((r) =>
        mine.has(r.runId),
      );
      expect(ids(completed)).toEqual([c.run.runId]);
      const pendingAlpha = await store.listRuns({ status: "pending", workflowName: "alpha", limit: 1000 });
      expect(ids(pendingAlpha.runs.filter((r) => mine.has(r.runId)))).toEqual([a.run.runId]);
      expect((await store.listRuns({ limit: 1 })).runs).toHaveLength(1);
    });

    describe("paging", () => {
      /** Runs of a workflow no other test uses, at the given times (several may share one). */
      const createAt = async (workflowName: string, times: string[]) => {
        const fixtures = times.map((createdAt, index) => {
          counter += 1;
          return newRunFixture({
            workflowName,
            createdAt,
            updatedAt: createdAt,
            runId: `run_page_${workflowName}_${String(index).padStart(2, "0")}_${counter}`,
          });
        });
        for (const fixture of fixtures) await store.createRun(fixture);
        return fixtures.map((fixture) => fixture.run);
      };
      const newestFirst = (runs: RunRecord[]) =>
        [...runs]
          .sort((a, b) =>
            a.createdAt === b.createdAt ? (a.runId < b.runId ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1,
          )
          .map((run) => run.runId);
      const pageThrough = async (query: RunQuery) => {
        const pages: string[][] = [];
        let cursor: string | undefined;
        do {
          const page = await store.listRuns({ ...query, ...(cursor ? { cursor } : {}) });
          pages.push(page.runs.map((run) => run.runId));
          cursor = page.nextCursor;
        } while (cursor && pages.length < 50);
        return pages;
      };

      it("pages through every run newest first, each once, with a cursor to each next page and none after the last", async () => {
        // Prepare
        const workflowName = `paging_${Date.now().toString(36)}`;
        const runs = await createAt(
          workflowName,
          Array.from({ length: 7 }, (_, day) => `2026-03-0${day + 1}T00:00:00.000Z`),
        );
        // Act
        const pages = await pageThrough({ workflowName, limit: 3 });
        // Assess
        expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
        expect(pages.flat()).toEqual(newestFirst(runs));
      });

      it("splits runs created in the same millisecond across pages without losing or repeating one", async () => {
        // Prepare
        const workflowName = `ties_${Date.now().toString(36)}`;
        const same = "2026-04-01T00:00:00.000Z";
        const runs = await createAt(workflowName, [same, same, same, same, same, "2026-03-31T00:00:00.000Z"]);
        // Act
        const pages = await pageThrough({ workflowName, limit: 2 });
        // Assess
        expect(pages.flat()).toEqual(newestFirst(runs));
        expect(pages).toHaveLength(3);
      });

      it("pages within a status filter and keeps its place when newer runs are created between pages", async () => {
        // Prepare
        const workflowName = `moving_${Date.now().toString(36)}`;
        const runs = await createAt(workflowName, [
          "2026-05-01T00:00:00.000Z",
          "2026-05-02T00:00:00.000Z",
          "2026-05-03T00:00:00.000Z",
          "2026-05-04T00:00:00.000Z",
        ]);
        // Act
        const first = await store.listRuns({ workflowName, status: "pending", limit: 2 });
        await createAt(workflowName, ["2026-05-05T00:00:00.000Z"]);
        const second = await store.listRuns({
          workflowName,
          status: "pending",
          limit: 2,
          ...(first.nextCursor ? { cursor: first.nextCursor } : {}),
        });
        // Assess
        const order = newestFirst(runs);
        expect(first.runs.map((run) => run.runId)).toEqual(order.slice(0, 2));
        expect(first.nextCursor).toEqual(expect.any(String));
        expect(second.runs.map((run) => run.runId)).toEqual(order.slice(2));
        expect(second.nextCursor).toBeUndefined();
      });

      it("refuses a cursor it did not make and a limit that is not a whole number ≥ 0", async () => {
        // Act
        const attempts = [
          store.listRuns({ cursor: "not a cursor" }),
          store.listRuns({ cursor: Buffer.from('{"a":1}').toString("base64url") }),
          store.listRuns({ limit: -1 }),
          store.listRuns({ limit: 1.5 }),
        ].map((attempt) =>
          attempt.then(
            () => undefined,
            (error: unknown) => error,
          ),
        );
        const errors = await Promise.all(attempts);
        // Assess
        for (const error of errors) {
          expect(error).toBeInstanceOf(InvalidRunQueryError);
          expect((error as InvalidRunQueryError).code).toBe("INVALID_QUERY");
        }
        expect((await store.listRuns({ limit: 0 })).runs).toEqual([]);
      });
    });

    describe("tags", () => {
      const tagged = (tags: Record<string, string>, createdAt: string, workflowName = "tagged_wf") => {
        counter += 1;
        const fixture = newRunFixture({ workflowName, createdAt, updatedAt: createdAt, tags });
        return { ...fixture, startedEvent: { ...fixture.startedEvent, tags } as WorkflowEvent };
      };
      const ids = (page: { runs: RunRecord[] }) => page.runs.map((run) => run.runId);

      it("lists the runs that carry every tag asked for, newest first, with status and workflow filters", async () => {
        // Prepare
        const tenant = `acme_${Date.now().toString(36)}_${counter}`;
        const older = tagged({ tenant, plan: "pro" }, "2026-04-01T00:00:00.000Z");
        const newer = tagged({ tenant, plan: "free" }, "2026-04-02T00:00:00.000Z", "other_wf");
        const elsewhere = tagged({ tenant: `${tenant}_other`, plan: "pro" }, "2026-04-03T00:00:00.000Z");
        for (const fixture of [older, newer, elsewhere]) await store.createRun(fixture);
        // Act
        const byTenant = await store.listRuns({ tags: { tenant } });
        const byTenantAndPlan = await store.listRuns({ tags: { tenant, plan: "pro" } });
        const byWorkflow = await store.listRuns({ tags: { tenant }, workflowName: "other_wf" });
        const byStatus = await store.listRuns({ tags: { tenant }, status: "running" });
        const unknown = await store.listRuns({ tags: { tenant: `${tenant}_nobody` } });
        // Assess
        expect(ids(byTenant)).toEqual([newer.run.runId, older.run.runId]);
        expect(byTenant.runs[0]?.tags).toEqual({ tenant, plan: "free" });
        expect(ids(byTenantAndPlan)).toEqual([older.run.runId]);
        expect(ids(byWorkflow)).toEqual([newer.run.runId]);
        expect(ids(byStatus)).toEqual([]);
        expect(ids(unknown)).toEqual([]);
      });

      it("pages through a tag's runs with the cursor, each once", async () => {
        // Prepare
        const tenant = `paged_${Date.now().toString(36)}_${counter}`;
        const fixtures = Array.from({ length: 5 }, (_, day) =>
          tagged({ tenant }, `2026-05-0${day + 1}T00:00:00.000Z`),
        );
        for (const fixture of fixtures) await store.createRun(fixture);
        // Act
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.listRuns({ tags: { tenant }, limit: 2, ...(cursor ? { cursor } : {}) });
          seen.push(...ids(page));
          cursor = page.nextCursor;
        } while (cursor);
        // Assess
        expect(seen).toEqual(fixtures.map((fixture) => fixture.run.runId).reverse());
      });

      it("lists a run under the tags a commit gave it, and no longer under a value it replaced", async () => {
        // Prepare
        const tenant = `retag_${Date.now().toString(36)}_${counter}`;
        const fixture = tagged({ tenant, plan: "free" }, "2026-06-01T00:00:00.000Z");
        const runId = fixture.run.runId;
        await store.createRun(fixture);
        const tags = { tenant, plan: "pro", region: "eu" };
        // Act
        await store.commit(
          runId,
          1,
          [
            {
              runId,
              seq: 2,
              timestamp: "2026-06-01T00:00:01.000Z",
              type: "tags_set",
              tags: { plan: "pro", region: "eu" },
            },
          ],
          { status: "running", updatedAt: "2026-06-01T00:00:01.000Z", tags },
        );
        // Assess
        expect((await store.getRun(runId))?.tags).toEqual(tags);
        expect(ids(await store.listRuns({ tags: { tenant, plan: "pro" } }))).toEqual([runId]);
        expect(ids(await store.listRuns({ tags: { region: "eu", tenant } }))).toEqual([runId]);
        expect(ids(await store.listRuns({ tags: { tenant, plan: "free" } }))).toEqual([]);
      });
    });

    it("rejects run ids that could escape a directory or inject into a key", async () => {
      for (const bad of ["../../etc/passwd", "a/b", "run id", "x".repeat(129), "", "RUN#1"]) {
        await expect(store.getRun(bad)).rejects.toBeInstanceOf(InvalidRunIdError);
        await expect(store.getEvents(bad)).rejects.toBeInstanceOf(InvalidRunIdError);
      }
      await expect(store.createRun(newRunFixture({ runId: "../escape" }))).rejects.toBeInstanceOf(
        InvalidRunIdError,
      );
    });

    it("keeps payloads exactly as written (nested JSON, unicode, nulls)", async () => {
      const fixture = newRunFixture({
        input: [{ name: "Zoë 🚀", tags: ["a", null, 3.5], deep: { x: { y: [true, false] } } }],
      });
      const runId = fixture.run.runId;
      await store.createRun(fixture);
      const events = await store.getEvents(runId);
      expect(events[0]).toEqual(fixture.startedEvent);
      expect((await store.getRun(runId))?.input).toEqual(fixture.run.input);
    });

    describePayloadLimitsContract(() => store);
  });
}

/**
 * Stores that check each commit's events are numbered on from the version they expect (memory, file and
 * Redis; the DynamoDB store takes the engine's events as built, to keep its Lambda bundle small).
 */
export function describeAppendOrderContract(name: string, harness: StoreHarness): void {
  describe(`EventStore append order: ${name}`, () => {
    let store: EventStore;
    const current = storePerTest(harness);
    beforeEach(() => {
      store = current();
    });

    it.each([
      ["a seq already in the log", 2],
      ["a seq past the end", 5],
    ])("refuses a commit whose event has %s, and stores nothing", async (_, seq) => {
      // Prepare
      const fixture = await runWithOneStep(store);
      const runId = fixture.run.runId;
      const failed: WorkflowEvent = {
        runId,
        seq,
        timestamp: fixture.run.createdAt,
        type: "workflow_failed",
        error: { name: "Error", message: "boom" },
      };
      // Act
      const commit = store.commit(runId, 3, [failed], { status: "failed", updatedAt: fixture.run.createdAt });
      // Assess
      await expect(commit).rejects.toMatchObject({
        name: "InvalidEventError",
        message: expect.stringContaining(`has runId ${runId} and seq ${seq}, but belongs at seq 4`),
      });
      expect((await store.getEvents(runId)).map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(await store.getRun(runId)).toMatchObject({ status: "running", version: 3 });
    });

    it("refuses a commit whose event belongs to another run", async () => {
      // Prepare
      const fixture = newRunFixture();
      const runId = fixture.run.runId;
      await store.createRun(fixture);
      // Act
      const commit = store.commit(runId, 1, stepEvents("run_someone_else", 2, "s#0"), {
        status: "running",
        updatedAt: fixture.run.createdAt,
      });
      // Assess
      await expect(commit).rejects.toMatchObject({ name: "InvalidEventError" });
      expect((await store.getEvents(runId)).map((e) => e.seq)).toEqual([1]);
    });
  });
}

/**
 * What a store whose `close()` lets go of what it writes through (a directory, a connection it opened) does
 * afterwards. `reopen` gives another store on the data of the closed one, to look at what it left.
 */
export function describeClosedStoreContract(
  name: string,
  harness: StoreHarness & { reopen(closed: EventStore): Promise<EventStore> },
): void {
  describe(`EventStore contract, once closed: ${name}`, () => {
    afterEach(async () => {
      await harness.cleanup?.();
    });

    it("refuses to create runs, commit and store outcomes with StorageClosedError, and stores none of them", async () => {
      // Prepare
      const store = await harness.create();
      const existing = newRunFixture();
      const { runId } = existing.run;
      await store.createRun(existing);
      await store.close();
      const fresh = newRunFixture();
      const recordedAt = new Date().toISOString();
      // Act
      const attempts = {
        createRun: store.createRun(fresh),
        commit: store.commit(runId, 1, stepEvents(runId, 2, "s#0"), {
          status: "running",
          updatedAt: recordedAt,
        }),
        stepOutcome: store.putOutcome({ runId, stepId: "s#0", attempt: 1, recordedAt, ok: true, result: 1 }),
        event: store.putOutcome({
          runId,
          stepId: inboxIds.signal("approval", "a-1"),
          attempt: 1,
          recordedAt,
          ok: true,
          result: { name: "approval", payload: true },
        }),
      };
      // Assess
      for (const [what, attempt] of Object.entries(attempts))
        await expect(attempt, what).rejects.toBeInstanceOf(StorageClosedError);
      const after = await harness.reopen(store);
      try {
        expect(await after.getRun(fresh.run.runId)).toBeUndefined();
        expect(await after.getRun(runId)).toMatchObject({ status: "pending", version: 1 });
        expect(await after.getEvents(runId)).toHaveLength(1);
        expect(await after.listOutcomes(runId)).toEqual([]);
      } finally {
        await after.close();
      }
    });
  });
}
