import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import type { ScheduleState, ScheduleStore } from "../../ports/schedule-store.ts";

/**
 * Schedule state in one JSON file, replaced atomically (write a temporary file, fsync, rename) so a
 * crash leaves either the old or the new state, never half of one.
 */
export class FileScheduleStore implements ScheduleStore {
  readonly #path: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
  }

  async get(name: string): Promise<ScheduleState | undefined> {
    return (await this.#read())[name];
  }

  async list(): Promise<ScheduleState[]> {
    return Object.values(await this.#read());
  }

  put(state: ScheduleState): Promise<void> {
    return this.#update((states) => {
      states[state.name] = { ...state };
    });
  }

  delete(name: string): Promise<void> {
    return this.#update((states) => {
      delete states[name];
    });
  }

  async #read(): Promise<Record<string, ScheduleState>> {
    try {
      return JSON.parse(await readFile(this.#path, "utf8")) as Record<string, ScheduleState>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw error;
    }
  }

  /** Read-modify-write, one at a time within this process. */
  #update(change: (states: Record<string, ScheduleState>) => void): Promise<void> {
    const next = this.#queue.then(async () => {
      const states = await this.#read();
      change(states);
      await mkdir(dirname(this.#path), { recursive: true });
      const temporary = `${this.#path}.tmp`;
      const file = await open(temporary, "w");
      try {
        await file.writeFile(JSON.stringify(states));
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, this.#path);
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }
}
