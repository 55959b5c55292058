import type { LocalTimer, LocalTimers } from "../adapters/in-process/local-timers.ts";
import { formatDuration } from "../core/durations.ts";
import { resumeAtOf, type WorkflowEvent } from "../core/events.ts";
import type { Registry } from "../core/registry.ts";
import { type RunConcurrency, recordedAdmission } from "../engine/admission.ts";
import { slotReason, waitingFor } from "../inspect/waiting-for.ts";
import type { Clock } from "../ports/clock.ts";
import { type EventStore, FINISHED_STATUSES, type RunRecord } from "../ports/event-store.ts";
import type { SlotStore } from "../ports/slot-store.ts";

/** What {@link RunWaits} reads: the test environment's runtime. */
export interface RunWaitsOptions {
  storage: EventStore;
  /** The slots of the runtime's run and step limits. */
  slots: SlotStore;
  timers: LocalTimers;
  clock: Clock;
  registry: Registry;
}

/** A pending run's concurrency slot that only the end of a run holding one can give it. */
interface HeldSlot {
  concurrency: RunConcurrency;
  /** The runs holding every slot of the key, none of them ended. */
  holders: RunRecord[];
  /** The run's place in the key's line, from 1. */
  place: number;
}

/**
 * What the runs of a test environment wait for: which of their timers can move them on, and, for a run that
 * will not finish by itself, why not and what the test can do about it.
 */
export class RunWaits {
  constructor(private readonly options: RunWaitsOptions) {}

  /**
   * Whether firing `timer` of `run` can move it on. A pending run that waits for a run concurrency slot looks
   * for one again every few seconds (the engine's run limits arm a "wake" activation: a safety net for a
   * wake-up lost between workers). In the test environment a run that ends hands its slot on at once, so
   * while every slot is held by a run that has not ended, the look finds nothing: moving the clock from one
   * look to the next would go on forever. A pending run's rate-limit turn is such a timer too, but one
   * that comes: the run holds its slot, if it has one, while it waits for it.
   */
  async matters(timer: LocalTimer, run: RunRecord): Promise<boolean> {
    if ("stepId" in timer.task || timer.task.cause.kind !== "wake") return true;
    return !(await this.heldSlot(run, await this.options.storage.getEvents(run.runId)));
  }

  /** Why a run will not finish by itself, and what the test can do about it. */
  async stuck(run: RunRecord, events: readonly WorkflowEvent[]): Promise<string> {
    const what = `Run ${run.runId} of ${run.workflowName} is ${run.status}`;
    if (!this.options.registry.findWorkflow(run.workflowName))
      return `${what} and will not finish by itself: no workflow "${run.workflowName}" is known in this test environment. Import its module, or pass it to createTestEnvironment({ workflows }).`;
    const slot = await this.heldSlot(run, events);
    if (!slot) {
      // A child pending behind a slot is what holds the run up: sending the run an event would not help.
      const children = await this.childrenInLine(run, events);
      return `${what} and will not finish by itself${children ? `.${children}` : this.nextMove(run, events, "run")}`;
    }
    const holders = await Promise.all(
      slot.holders.map(async (holder) => {
        const holderEvents = await this.options.storage.getEvents(holder.runId);
        const waits = waitingFor(holder, holderEvents);
        const handle = `env.getHandle("${holder.runId}")`;
        return `Run ${holder.runId} is ${holder.status}${waits.length > 0 ? `, waiting for ${waits.join(", ")},` : ""} and will not finish by itself${this.nextMove(holder, holderEvents, handle)}`;
      }),
    );
    const ids = slot.holders.map((holder) => holder.runId).join(", ");
    return [
      `${what} and will not finish by itself: it waits for ${slotReason(slot.concurrency)}, held by ${slot.holders.length === 1 ? "run" : "runs"} ${ids}.`,
      ...holders,
      slot.place === 1
        ? "This run is first in line: the first slot to come free goes to it."
        : `This run is number ${slot.place} in line: the slots go to the runs in line in order as they come free.`,
    ].join(" ");
  }

  /**
   * For a run that waits for child runs: those pending for a slot that only a holder's end frees, the holders
   * named (` Its child run … waits for a run concurrency slot …, held by run …`), else "".
   */
  private async childrenInLine(run: RunRecord, events: readonly WorkflowEvent[]): Promise<string> {
    const ended = new Set(
      events.flatMap((event) =>
        event.type === "child_completed" || event.type === "child_failed" ? [event.childId] : [],
      ),
    );
    const sentences: string[] = [];
    for (const event of events) {
      if (event.type !== "child_started" || ended.has(event.childId)) continue;
      const child = await this.options.storage.getRun(event.childRunId);
      const slot = child && (await this.heldSlot(child, await this.options.storage.getEvents(child.runId)));
      if (!slot) continue;
      const holders = slot.holders.map((holder) => holder.runId);
      const parentHolds = holders.includes(run.runId)
        ? ": this run, which holds it while it waits for the child. Give the child's workflow a concurrency key of its own (or no limit), or do its work in steps of this run"
        : "";
      sentences.push(
        ` Its child run ${event.childRunId} is pending: it waits for ${slotReason(slot.concurrency)}, held by ${holders.length === 1 ? "run" : "runs"} ${holders.join(", ")}${parentHolds}.`,
      );
    }
    return sentences.join("");
  }

  /**
   * What moves a run on that waits: the clock, when it has a timer (a run that is not suspended may wait
   * for one that no event records: a rate-limit turn), else only the test, through `handle`.
   */
  private nextMove(run: RunRecord, events: readonly WorkflowEvent[], handle: string): string {
    const wakeAt =
      run.status === "suspended" ? resumeAtOf(events) : this.options.timers.next(run.runId)?.fireAt;
    if (wakeAt === undefined)
      return `: nothing in this test environment moves it on. Send it an event (${handle}.sendEvent), call its webhook (${handle}.callWebhook) or cancel it (${handle}.cancel).`;
    const wait = formatDuration(Math.max(0, wakeAt - this.options.clock.now()));
    return ` until the clock moves: its next timer is due in ${wait} on the virtual clock (${new Date(wakeAt).toISOString()}). Move the clock with env.skip(duration) or env.skipToNextTimer(), or create the environment with { timeSkipping: true } so that result() does it.`;
  }

  /**
   * The slot a pending run waits for, when only the end of a run holding one can give it one. Undefined when
   * the run waits for no slot (its workflow has no concurrency, or it holds its slot and waits for its
   * rate-limit turn), or when a look of its own may change something: it is not in line yet, a slot is
   * free, or one is held by a run that has ended (the first run in line takes it back).
   */
  private async heldSlot(run: RunRecord, events: readonly WorkflowEvent[]): Promise<HeldSlot | undefined> {
    const concurrency = run.status === "pending" ? recordedAdmission(events)?.concurrency : undefined;
    if (!concurrency) return undefined;
    const { storage, slots, clock } = this.options;
    const { holding, waiting } = await slots.inspect(concurrency.key, clock.now());
    const place = waiting.indexOf(run.runId) + 1;
    if (place === 0 || holding.length < concurrency.limit) return undefined;
    const holders = await Promise.all(holding.map((holder) => storage.getRun(holder)));
    const active = holders.filter(
      (holder): holder is RunRecord => holder !== undefined && !FINISHED_STATUSES.has(holder.status),
    );
    return active.length === holders.length ? { concurrency, holders: active, place } : undefined;
  }
}
