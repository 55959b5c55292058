/**
 * A store may refuse a commit that is too large as a whole (DynamoDB without a payload bucket: about 4 MB),
 * though every value in it is under the payload limit. The engine then applies the outcomes that arrived
 * together in as many commits as it takes, and fails the run, with the store's error, only when the events
 * it cannot split (the workflow's own, or those of one outcome) do not fit (lib/engine/payload-rules.ts).
 */
import { type AnyWorkflow, configureLogging, step, waitForEvent, workflow } from "tsworkflow";
import type { RunPatch } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PayloadTooLargeError } from "../../lib/core/errors.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import { manualEngine } from "./support/manual-engine.ts";

const KB = 1024;
const runs = new Map<string, number>();

const chunk = step("commit_limits_chunk", async (index: number) => {
  runs.set(`chunk:${index}`, (runs.get(`chunk:${index}`) ?? 0) + 1);
  return String(index % 10).repeat(10 * KB);
});
const total = step("commit_limits_total", async (lengths: number[]) =>
  lengths.reduce((sum, length) => sum + length, 0),
);
const fanOut = workflow("commit_limits_fan_out", async (count: number) => {
  const parts = await Promise.all(Array.from({ length: count }, (_, index) => chunk(index)));
  return total(parts.map((part) => part.length));
});
const upload = step("commit_limits_upload", async (data: string) => data.length);
const bigInputs = workflow("commit_limits_big_inputs", async (count: number) => {
  const data = "u".repeat(10 * KB);
  return Promise.all(Array.from({ length: count }, () => upload(data)));
});
const documents = workflow("commit_limits_documents", async (count: number) => {
  const received = await Promise.all(
    Array.from({ length: count }, () => waitForEvent<string>("commit_limits_document")),
  );
  return received.map((document) => document.length);
});

/** A memory store that refuses, as the DynamoDB store without a payload bucket does, a commit whose events pass a limit. */
class SmallCommits extends MemoryStorage {
  /** The JSON bytes of every commit taken. */
  readonly taken: number[] = [];
  refused = 0;

  constructor(readonly maxCommitBytes: number) {
    super();
  }

  override async commit(
    runId: string,
    expectedVersion: number,
    events: readonly WorkflowEvent[],
    patch: RunPatch,
  ) {
    const bytes = Buffer.byteLength(JSON.stringify(events));
    if (bytes > this.maxCommitBytes) {
      this.refused += 1;
      throw new PayloadTooLargeError(
        `A commit of ${events.length} events to run ${runId}`,
        bytes,
        this.maxCommitBytes,
      );
    }
    this.taken.push(bytes);
    return super.commit(runId, expectedVersion, events, patch);
  }
}

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

/** A run of `definition` on an engine whose store takes 35 KB per commit (lone steps run inline). */
async function startOnSmallCommits(definition: AnyWorkflow, count: number) {
  const store = new SmallCommits(35 * KB);
  const m = manualEngine({ store, inlineSteps: true });
  const { runId } = await m.engine.start(definition, [count]);
  return { store, m, runId };
}

/** The store refused a commit, and took only commits within its limit. */
function expectSplit(store: SmallCommits): void {
  expect(store.refused).toBeGreaterThan(0);
  expect(Math.max(...store.taken)).toBeLessThanOrEqual(35 * KB);
}

describe("a commit the store finds too large", () => {
  it("applies the outcomes of parallel steps that together pass the store's commit limit in several commits, and the run completes with every result", async () => {
    // Prepare: ten results of 10 KB, a store that takes 35 KB per commit.
    const { store, m, runId } = await startOnSmallCommits(fanOut, 10);
    // Act
    await m.runQueued();
    // Assess
    const run = await m.run(runId);
    expect(run.error).toBeUndefined();
    expect(run.status).toBe("completed");
    expect(run.result).toBe(100 * KB);
    const events = await m.events(runId);
    const completed = events.filter((event) => event.type === "step_completed");
    const chunks = completed.filter((event) => event.stepName === "commit_limits_chunk");
    expect(chunks.map((event) => event.result)).toEqual(
      chunks.map((event) => String(Number(event.stepId.split("#")[1]) % 10).repeat(10 * KB)),
    );
    expect(completed).toHaveLength(11);
    expectSplit(store);
    for (let index = 0; index < 10; index += 1) expect(runs.get(`chunk:${index}`)).toBe(1);
  });

  it("applies events sent together that pass the store's commit limit in several commits", async () => {
    // Prepare
    const { store, m, runId } = await startOnSmallCommits(documents, 6);
    await m.runQueued();
    // Act: six events of 10 KB, stored before the run's activation applies any.
    for (let index = 0; index < 6; index += 1)
      await m.engine.sendEvent(runId, "commit_limits_document", "d".repeat(10 * KB + index));
    await m.runQueued();
    // Assess
    const run = await m.run(runId);
    expect(run.status).toBe("completed");
    expect(run.result).toEqual([0, 1, 2, 3, 4, 5].map((index) => 10 * KB + index));
    expectSplit(store);
  });

  it("fails the run with the store's PayloadTooLargeError when the workflow's own new events do not fit in one commit", async () => {
    // Prepare: four steps started at once, each with a 10 KB input.
    const { m, runId } = await startOnSmallCommits(bigInputs, 4);
    // Act
    await m.runQueued();
    // Assess: failed at once, nothing sent, the error in the log.
    const run = await m.run(runId);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ name: "PayloadTooLargeError", code: "PAYLOAD_TOO_LARGE" });
    expect(run.error?.message).toMatch(
      /^A commit of \d+ events to run .* is \d+ bytes, over the limit of 35840 bytes/,
    );
    const events = await m.events(runId);
    expect(events.map((event) => event.type)).toEqual(["workflow_started", "workflow_failed"]);
    expect(m.queue.steps).toHaveLength(0);
  });
});
