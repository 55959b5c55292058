import { LruMap } from "../../core/lru-map.ts";
import type { Clock } from "../../ports/clock.ts";
import type { StepTask } from "../../ports/task-queue.ts";

/** Options of {@link InlineBudget}. */
export interface InlineBudgetOptions {
  clock: Clock;
  /** Time kept after an inline step for the commit that records it and the hand-over. @default 3,000 ms */
  marginMs?: number;
  /** What a step not seen yet in this instance is assumed to take. @default 5,000 ms */
  unknownStepMs?: number;
}

/** Step names whose longest inline attempt is remembered, per function instance. */
const REMEMBERED_STEPS = 1_000;

/**
 * Decides whether a workflow invocation runs a run's next step itself (an inline step: no queue hop, no
 * step invocation) or sends it to the step queue: only within an invocation, and only when the step
 * should end, with room to spare, before the invocation's deadline: twice the longest attempt of that
 * step seen in this instance (or `unknownStepMs` for a step not seen yet), plus `marginMs`. An inline step
 * that outlives the invocation all the same dies with it; the activation's message comes back and the
 * step goes to the step queue (at-least-once, as after any crash).
 */
export class InlineBudget {
  /** When the invocation under way must end (Lambda runs one invocation at a time per instance). */
  private deadline = 0;
  private readonly longest = new LruMap<number>(REMEMBERED_STEPS);
  private readonly marginMs: number;
  private readonly unknownStepMs: number;

  constructor(private readonly options: InlineBudgetOptions) {
    this.marginMs = options.marginMs ?? 3_000;
    this.unknownStepMs = options.unknownStepMs ?? 5_000;
  }

  /**
   * An invocation begins with `remainingMs` before Lambda stops it.
   * @returns what ends it: outside invocations no step runs inline
   */
  begin(remainingMs: number): () => void {
    this.deadline = this.options.clock.now() + remainingMs;
    return () => {
      this.deadline = 0;
    };
  }

  /**
   * A slot for `task` to run inline, or undefined when it must go through the queue. The release records
   * how long the attempt took.
   */
  reserve(task: StepTask): (() => void) | undefined {
    const { clock } = this.options;
    const began = clock.now();
    const expected = this.longest.get(task.stepName) ?? this.unknownStepMs;
    if (this.deadline - began < 2 * expected + this.marginMs) return undefined;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const took = clock.now() - began;
      this.longest.set(task.stepName, Math.max(took, this.longest.get(task.stepName) ?? 0));
    };
  }
}
