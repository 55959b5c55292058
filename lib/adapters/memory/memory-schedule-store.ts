import type { ScheduleState, ScheduleStore } from "../../ports/schedule-store.ts";

/** Schedule state in memory: lost with the process, for tests and throwaway runtimes. */
export class MemoryScheduleStore implements ScheduleStore {
  readonly #states = new Map<string, ScheduleState>();

  async get(name: string): Promise<ScheduleState | undefined> {
    const state = this.#states.get(name);
    return state && { ...state };
  }

  async list(): Promise<ScheduleState[]> {
    return [...this.#states.values()].map((state) => ({ ...state }));
  }

  async put(state: ScheduleState): Promise<void> {
    this.#states.set(state.name, { ...state });
  }

  async delete(name: string): Promise<void> {
    this.#states.delete(name);
  }
}
