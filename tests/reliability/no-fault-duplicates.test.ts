/**
 * Issue 21 #15: with no fault at all, a step must run once per recorded attempt. An activation whose cause
 * another activation already applied is not a redelivery: it must not send the run's steps again.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, type EventStore, getStepInfo, step, workflow } from "tsworkflow";
import type { ActivationTask } from "tsworkflow/engine";
import { FileStorage, LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** A promise the test resolves by name. */
class Gates {
  private readonly gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  private gate(name: string) {
    let gate = this.gates.get(name);
    if (!gate) {
      let open: () => void = () => {};
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      gate = { promise, open };
      this.gates.set(name, gate);
    }
    return gate;
  }
  wait(name: string): Promise<void> {
    return this.gate(name).promise;
  }
  open(name: string): void {
    this.gate(name).open();
  }
}

const gates = new Gates();
/** Executions of each attempt, by `stepId#attempt`; and which steps are inside their function now. */
const executions = new Map<string, number>();
const entered = new Set<string>();

const gated = (name: string) =>
  step(`nofault_${name}`, async () => {
    const info = getStepInfo();
    const key = `${info?.runId}/${info?.stepId}#${info?.attempt}`;
    executions.set(key, (executions.get(key) ?? 0) + 1);
    entered.add(`${info?.runId}/${name}`);
    await gates.wait(`${info?.runId}/${name}`);
    return name;
  });
const X = gated("x");
const C = gated("c");
const A = gated("a");
const B = gated("b");

const mixed = workflow("nofault_mixed", async () =>
  Promise.all([
    X(),
    C(),
    (async () => {
      await A();
      return B();
    })(),
  ]),
);

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function reproduce(storage: EventStore): Promise<{ runs: Map<string, number>; attempts: string[] }> {
  const runtime = new LocalRuntime({ storage, recover: false });
  // Watch the queue's deliveries: which activations have been handled, which step tasks are still out.
  const handled: ActivationTask[] = [];
  let stepTasksOut = 0;
  runtime.queue.consume({
    activate: async (task) => {
      await runtime.engine.activate(task);
      handled.push(task);
    },
    executeStep: async (task) => {
      stepTasksOut += 1;
      try {
        await runtime.engine.executeStep(task);
      } finally {
        stepTasksOut -= 1;
      }
    },
  });
  try {
    const { runId } = await runtime.start(mixed, []);
    const open = (name: string) => gates.open(`${runId}/${name}`);
    await until(() => ["x", "c", "a"].every((name) => entered.has(`${runId}/${name}`)), "X, C and A run");
    // Finish A: B is then the run's lone next step, run inline by the activation.
    open("a");
    await until(() => entered.has(`${runId}/b`), "B runs");
    // Finish X and B in the same turn.
    open("x");
    open("b");
    await until(
      () => handled.some((task) => task.cause.kind === "outcome" && task.cause.stepId === "nofault_x#0"),
      "the activation woken by X's outcome has run",
    );
    // Only C is out now, waiting at its gate (with as many copies as were sent).
    const cRuns = () => executions.get(`${runId}/nofault_c#0#1`) ?? 0;
    await until(() => stepTasksOut === cRuns(), "every step task sent is inside C");
    open("c");
    await runtime.waitForRun(runId, { timeoutMs: 30_000 });
    await runtime.idle();
    const events = await storage.getEvents(runId);
    const attempts = events.flatMap((event) =>
      event.type === "step_started" ? [`${runId}/${event.stepId}#${event.attempt}`] : [],
    );
    const runs = new Map([...executions].filter(([key]) => key.startsWith(`${runId}/`)));
    return { runs, attempts };
  } finally {
    await runtime.close();
  }
}

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

describe("a Promise.all of queued steps with a sequential chain inside it, with no fault", () => {
  it("runs each recorded attempt exactly once on MemoryStorage", async () => {
    // Act
    const { runs, attempts } = await reproduce(new MemoryStorage());
    // Assess
    expect(attempts).toHaveLength(4);
    expect(Object.fromEntries(runs)).toEqual(Object.fromEntries(attempts.map((key) => [key, 1])));
  });

  it("runs each recorded attempt exactly once on FileStorage", async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), "tsw-nofault-"));
    try {
      // Act
      const { runs, attempts } = await reproduce(new FileStorage({ dir }));
      // Assess
      expect(attempts).toHaveLength(4);
      expect(Object.fromEntries(runs)).toEqual(Object.fromEntries(attempts.map((key) => [key, 1])));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
