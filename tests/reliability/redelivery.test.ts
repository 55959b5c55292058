/**
 * Redelivery after a commit whose reply was lost (a worker that died right after committing): the
 * activation comes back with the same cause and must send what the commit asked for.
 */
import { configureLogging, type EventStore, getStepInfo, step, workflow } from "tsworkflow";
import { MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manualEngine } from "../core/support/manual-engine.ts";

const flaky = step(
  "redeliver_flaky",
  async () => {
    if (getStepInfo()?.attempt === 1) throw new Error("the first attempt fails");
    return "ok";
  },
  { retryDelay: "1m" },
);
const retrying = workflow("redeliver_retrying", async () => flaky());

/** Writes every commit, but the first one holding `type` reports a failure, as if the worker died right after it. */
class DiesAfterCommitOf extends MemoryStorage {
  died = false;
  constructor(private readonly type: string) {
    super();
  }

  override async commit(...args: Parameters<EventStore["commit"]>): Promise<void> {
    await super.commit(...args);
    if (!this.died && args[2].some((event) => event.type === this.type)) {
      this.died = true;
      throw new Error("the worker died right after this commit");
    }
  }
}

beforeAll(() => {
  configureLogging({ level: "silent" });
});

afterAll(() => {
  configureLogging();
});

describe("an activation delivered again after its commit", () => {
  it("arms the retry timer that the commit of step_retrying asked for", async () => {
    // Prepare
    const store = new DiesAfterCommitOf("step_retrying");
    const m = manualEngine({ store });
    const { runId } = await m.engine.start(retrying, []);
    for (const task of m.queue.takeActivations()) await m.engine.activate(task);
    for (const task of m.queue.takeSteps()) await m.engine.executeStep(task);
    const [wake] = m.queue.takeActivations();
    if (!wake) throw new Error("no wake-up after the failed attempt");
    await expect(m.engine.activate(wake)).rejects.toThrow("died right after this commit");
    const before = await m.events(runId);
    // Act: the queue delivers the activation again (a BullMQ retry, an SQS redelivery).
    await m.engine.activate(wake);
    // Assess
    expect(await m.events(runId)).toEqual(before);
    expect((await m.run(runId)).status).toBe("suspended");
    expect([...m.timers.pending.keys()]).toEqual([`${runId}/retry:redeliver_flaky#0:2`]);
    await m.runToEnd();
    expect((await m.run(runId)).result).toBe("ok");
  });
});
