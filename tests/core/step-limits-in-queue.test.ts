import { describe, expect, it } from "vitest";
import { step } from "../../lib/core/step.ts";
import { MemoryRateLimitStore } from "../../lib/engine/memory-rate-limit-store.ts";
import { MemorySlotStore } from "../../lib/engine/memory-slot-store.ts";
import { StepLimits } from "../../lib/engine/step-limits.ts";
import type { StepParking } from "../../lib/ports/step-parking.ts";
import type { StepTask } from "../../lib/ports/task-queue.ts";

/**
 * StepLimits in queue mode (what the AWS runtime turns on): a task that must wait is sent again with a queue
 * delay, never held in a timer of this process. The sends are recorded exactly.
 */

const T0 = Date.parse("2030-01-01T00:00:00.000Z");
const HOUR = 3_600_000;

const hourly = step("queue_mode_hourly", async (index: number) => index, {
  rateLimit: { limit: 1, period: HOUR },
});
const single = step("queue_mode_single", async (index: number) => index, { concurrency: { limit: 1 } });

const taskOf = (stepName: string, index: number): StepTask => ({
  runId: `run-${index}`,
  workflowName: "wf",
  stepId: `${stepName}#0`,
  stepName,
  attempt: 1,
  input: [index],
});

/** Parked tasks in a Map, as the DynamoDB slot store keeps them in items. */
class MemoryParking implements StepParking {
  readonly tasks = new Map<string, StepTask>();
  async park(key: string, holder: string, task: StepTask): Promise<void> {
    this.tasks.set(`${key}|${holder}`, task);
  }
  async parked(key: string, holders: readonly string[]): Promise<StepTask[]> {
    return holders.flatMap((holder) => this.tasks.get(`${key}|${holder}`) ?? []);
  }
}

function queueMode(options: { leaseMs?: number } = {}) {
  const clock = { now: () => T0 + elapsed };
  let elapsed = 0;
  const sent: { task: StepTask; delaySeconds: number }[] = [];
  const parking = new MemoryParking();
  const slots = new MemorySlotStore();
  /** Attempts whose outcome is stored (by another copy of them). */
  const done = new Set<string>();
  const limits = new StepLimits({
    slots,
    rates: new MemoryRateLimitStore(),
    parking,
    ...options,
  });
  limits.attach({
    clock,
    requeue: async (task) => {
      sent.push({ task, delaySeconds: 0 });
    },
    store: {
      getRun: async () => undefined,
      getOutcome: async (runId, stepId, attempt) =>
        done.has(`${runId}/${stepId}/${attempt}`)
          ? { runId, stepId, attempt, recordedAt: new Date(T0).toISOString(), ok: true, result: null }
          : undefined,
    },
  });
  limits.waitInQueue(async (task, delaySeconds) => {
    sent.push({ task, delaySeconds });
  });
  return {
    limits,
    sent,
    parking,
    slots,
    done,
    advance(ms: number) {
      elapsed += ms;
    },
  };
}

/** Attempt 1 of `single` holding the only slot until `release()`. */
async function holdTheSlot(limits: StepLimits) {
  let release: () => void = () => {};
  const holding = limits.run(
    taskOf(single.stepName, 1),
    single,
    () =>
      new Promise((resolve) => {
        release = () => resolve("first");
      }),
  );
  await new Promise((resolve) => setTimeout(resolve, 10));
  return { holding, release: () => release() };
}

describe("StepLimits with waits in the queue", () => {
  it("sends a rate-limited attempt back with its turn as a queue delay, 900 s at most, chaining a longer wait", async () => {
    // Prepare: one start an hour, taken
    const { limits, sent, advance } = queueMode();
    const first = await limits.run(taskOf(hourly.stepName, 1), hourly, async (began) => {
      began(T0);
      return "ran";
    });
    expect(first).toEqual({ waiting: false, value: "ran" });

    // Act: the next attempt asks at once, then again each time its delayed task arrives
    const second = taskOf(hourly.stepName, 2);
    const waits: boolean[] = [];
    for (let arrival = 0; arrival < 10; arrival += 1) {
      const answer = await limits.run(second, hourly, async () => "ran");
      waits.push(answer.waiting);
      if (!answer.waiting) break;
      advance((sent.at(-1)?.delaySeconds ?? 0) * 1000);
    }

    // Assess: four delays of 900 s, the queue's longest, then the last millisecond of the window (rounded
    // up to a second), then its start
    expect(waits).toEqual([true, true, true, true, true, false]);
    expect(sent.map((send) => send.delaySeconds)).toEqual([900, 900, 900, 900, 1]);
    expect(sent.every((send) => send.task === second)).toBe(true);
  });

  it("parks an attempt that waits for a slot, sends it back at its re-check, and sends it again at once when the slot is released", async () => {
    // Prepare
    const { limits, sent, parking } = queueMode({ leaseMs: 30_000 });
    const { holding, release } = await holdTheSlot(limits);

    // Act
    const waiting = await limits.run(taskOf(single.stepName, 2), single, async () => "second");
    const parked = [...parking.tasks.values()];
    const beforeRelease = [...sent];
    release();
    await holding;

    // Assess: its re-check is a third of the lease (10 s); the release sent it again with no delay
    expect(waiting).toEqual({ waiting: true });
    expect(parked).toEqual([taskOf(single.stepName, 2)]);
    expect(beforeRelease).toEqual([{ task: taskOf(single.stepName, 2), delaySeconds: 10 }]);
    expect(sent.slice(1)).toEqual([{ task: taskOf(single.stepName, 2), delaySeconds: 0 }]);
    expect(await limits.run(taskOf(single.stepName, 2), single, async () => "second")).toEqual({
      waiting: false,
      value: "second",
    });
  });

  it("gives its place in line back when a late copy of an attempt finds the attempt's outcome stored", async () => {
    // Prepare: attempt 1 holds the only slot; attempt 2 waits in line
    const { limits, slots, done } = queueMode({ leaseMs: 30_000 });
    const { holding, release } = await holdTheSlot(limits);
    const second = taskOf(single.stepName, 2);
    expect(await limits.run(second, single, async () => "second")).toEqual({ waiting: true });
    const key = `step:${single.stepName}:`;
    expect((await slots.inspect(key, T0)).waiting).toEqual(["run-2/queue_mode_single#0/1"]);

    // Act: another copy of attempt 2 ran it meanwhile; this copy comes back at its re-check
    done.add("run-2/queue_mode_single#0/1");
    let ranAgain = false;
    const late = await limits.run(second, single, async () => {
      ranAgain = true;
      return "second";
    });
    release();
    await holding;

    // Assess: nothing ran, and no place is left in line (before, it stayed until its lease ran out)
    expect(late).toEqual({ waiting: true });
    expect(ranAgain).toBe(false);
    expect(await slots.inspect(key, T0)).toEqual({ holding: [], waiting: [] });
  });

  it("sends back a copy of an attempt whose slot a dead copy holds, and runs it once that copy's lease has ended", async () => {
    // Prepare: a copy of attempt 1 took the slot on a worker that died (SIGKILL): its lease runs on.
    const { limits, sent, slots, advance } = queueMode({ leaseMs: 30_000 });
    const task = taskOf(single.stepName, 1);
    const key = `step:${single.stepName}:`;
    const holder = "run-1/queue_mode_single#0/1";
    await slots.acquire({ key, holder, token: "dead-copy", limit: 1, leaseMs: 30_000, now: T0 });

    // Act: the queue delivers the task again before the lease ends, then at each re-check
    const early = await limits.run(task, single, async () => "ran");
    advance(10_000);
    const stillHeld = await limits.run(task, single, async () => "ran");
    advance(20_000);
    const afterLease = await limits.run(task, single, async () => "ran");

    // Assess: sent back at its re-checks (before, the copy was dropped and the attempt waited for the sweeper)
    expect([early, stillHeld]).toEqual([{ waiting: true }, { waiting: true }]);
    expect(sent).toEqual([
      { task, delaySeconds: 10 },
      { task, delaySeconds: 10 },
    ]);
    expect(afterLease).toEqual({ waiting: false, value: "ran" });
    expect(await slots.inspect(key, T0 + 30_000)).toEqual({ holding: [], waiting: [] });
  });

  it("never runs a copy of an attempt while another live copy holds its slot: it finds the outcome at a re-check", async () => {
    // Prepare: the first copy of attempt 1 runs, holding the only slot (a false stall delivers it again)
    const { limits, sent, done } = queueMode({ leaseMs: 30_000 });
    const { holding, release } = await holdTheSlot(limits);
    const task = taskOf(single.stepName, 1);
    let copies = 0;
    const body = async () => {
      copies += 1;
      return "copy";
    };

    // Act: the second copy comes while the first runs, then again after the first stored its outcome
    const whileRunning = await limits.run(task, single, body);
    done.add("run-1/queue_mode_single#0/1");
    release();
    await holding;
    const afterwards = await limits.run(task, single, body);

    // Assess: sent back once at its re-check, then given up, never run
    expect([whileRunning, afterwards]).toEqual([{ waiting: true }, { waiting: true }]);
    expect(sent).toEqual([{ task, delaySeconds: 10 }]);
    expect(copies).toBe(0);
  });
});
