import type { RunRecord, WorkflowEvent } from "tsworkflow";
import type { EventStore } from "tsworkflow/engine";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { VirtualClock } from "tsworkflow/testing";

/** An embedded runtime on a virtual clock whose timers fire only when the test moves time. */
export function virtualRuntime(storage: EventStore = new MemoryStorage()) {
  const clock = new VirtualClock(Date.UTC(2026, 0, 1));
  const runtime = new LocalRuntime({ storage, clock, timers: "manual", recover: false });
  return {
    runtime,
    clock,
    storage,
    /** Lets every queued task run. */
    settle: () => runtime.idle(),
    /** Moves the clock by `ms`, fires what fell due, and lets it run. */
    async advance(ms: number) {
      clock.advanceTo(clock.now() + ms);
      await runtime.fireDueTimers(clock.now());
      await runtime.idle();
    },
    async run(runId: string): Promise<RunRecord> {
      return (await storage.getRun(runId)) as RunRecord;
    },
    async types(runId: string): Promise<string[]> {
      return (await storage.getEvents(runId)).map((event: WorkflowEvent) => event.type);
    },
    close: () => runtime.close(),
  };
}
