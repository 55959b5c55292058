import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ActivationTask } from "../../lib/ports/task-queue.ts";
import type { TimerRequest, Timers } from "../../lib/ports/timers.ts";

/** Timers whose fired tasks are recorded, on a clock the test can move. */
export interface TimersKit {
  timers: Timers;
  now(): number;
  /** Moves to `time` (a virtual clock jumps; real time is waited for) and returns every task fired so far. */
  advanceTo(time: number): Promise<ActivationTask[]>;
  close(): Promise<void>;
}

/** Makes fresh timers for each test; `delayMs` is how far ahead the test's timers are set. */
export interface TimersHarness {
  create(): Promise<TimersKit>;
  delayMs: number;
  /** How close to its time a timer is checked not to have fired yet (real clocks need a margin). */
  marginMs: number;
}

let runs = 0;

function timer(kit: TimersKit, harness: TimersHarness, timerId: string, runId: string): TimerRequest {
  return {
    runId,
    timerId,
    fireAt: kit.now() + harness.delayMs,
    task: { runId, cause: { kind: "timer", timerId } },
  };
}

/** Polls (moving the clock to `time` each round) until `done`; real deliveries take a moment. */
async function firedBy(kit: TimersKit, time: number, done: (fired: ActivationTask[]) => boolean) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const fired = await kit.advanceTo(time);
    if (done(fired)) return fired;
    if (Date.now() > deadline) throw new Error(`timed out; fired so far: ${JSON.stringify(fired)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const sent = ({ runId, cause }: ActivationTask) => ({ runId, cause });

/** What the engine relies on from every Timers adapter (local, BullMQ, SQS + EventBridge Scheduler). */
export function describeTimersContract(name: string, harness: TimersHarness): void {
  describe(`Timers contract: ${name}`, () => {
    let kit: TimersKit;
    let runId: string;
    beforeEach(async () => {
      kit = await harness.create();
      runId = `run_timers_${process.pid}_${++runs}`;
    });
    afterEach(async () => {
      await kit.close();
    });

    it("fires a timer's task once its time comes, and not before", async () => {
      // Prepare
      const request = timer(kit, harness, "sleep#0", runId);
      // Act
      await kit.timers.schedule(request);
      // Assess
      expect(await kit.advanceTo(request.fireAt - harness.marginMs)).toEqual([]);
      const fired = await firedBy(kit, request.fireAt + harness.marginMs, (all) => all.length > 0);
      expect(fired.map(sent)).toEqual([request.task]);
    });

    it("fires a timer scheduled twice once", async () => {
      // Prepare
      const request = timer(kit, harness, "retry:charge#0:2", runId);
      // Another run's: a queue may coalesce two activations of one run into one.
      const other = timer(kit, harness, "sleep#9", `${runId}_b`);
      // Act
      await kit.timers.schedule(request);
      await kit.timers.schedule(request);
      await kit.timers.schedule(other);
      // Assess: once both fired, and a margin later, the one scheduled twice has had its chance to fire twice.
      await firedBy(kit, request.fireAt + harness.marginMs, (all) => all.length >= 2);
      const fired = await kit.advanceTo(request.fireAt + 2 * harness.marginMs);
      expect(fired.map(sent).sort(byJson)).toEqual([request.task, other.task].sort(byJson));
    });

    it("never fires a cancelled timer, and cancelling one it does not know does nothing", async () => {
      // Prepare
      const cancelled = timer(kit, harness, "hook:approval#0", runId);
      const kept = timer(kit, harness, "sleep#1", runId);
      // Act
      await kit.timers.schedule(cancelled);
      await kit.timers.schedule(kept);
      await kit.timers.cancel(runId, cancelled.timerId);
      await kit.timers.cancel(runId, "never-scheduled");
      // Assess
      await firedBy(kit, kept.fireAt + harness.marginMs, (all) => all.length >= 1);
      const fired = await kit.advanceTo(kept.fireAt + 2 * harness.marginMs);
      expect(fired.map(sent)).toEqual([kept.task]);
    });

    it("fires a timer whose time has already passed", async () => {
      // Prepare
      const request = { ...timer(kit, harness, "sleep#2", runId), fireAt: kit.now() - 1_000 };
      // Act
      await kit.timers.schedule(request);
      // Assess
      const fired = await firedBy(kit, kit.now(), (all) => all.length > 0);
      expect(fired.map(sent)).toEqual([request.task]);
    });
  });
}

const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
