import { randomUUID } from "node:crypto";
import {
  type FSWatcher,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  watch,
} from "node:fs";
import { link, open, unlink } from "node:fs/promises";
import { join } from "node:path";
import { sha256 } from "../../core/hash.ts";
import { getLogger } from "../../core/logger.ts";
import type { StepOutcome } from "../../ports/event-store.ts";

/** What an inbox file asks of the run's owner. */
export type InboxRequest =
  | { kind: "outcome"; name: string; runId: string; outcome: StepOutcome }
  | { kind: "retry"; name: string; runId: string; version: number };

/** Options of {@link Inbox.watch}. */
export interface InboxWatchOptions {
  /**
   * How often the inbox is also read without being told (a file system whose change notifications do
   * not reach this process); when watching is not possible at all, it is read every 50 ms.
   * @default 1000
   */
  pollMs?: number;
  /** Read the inbox only by polling, every `pollMs` (for file systems without change notifications). */
  pollOnly?: boolean;
}

const TEMPORARY = ".tmp-";

/**
 * Control requests for a directory's runs, from any process, one file each in `<dir>/inbox/`:
 * a cancellation, an event sent to a run or a child's result (stored outcomes), or a retry.
 * Each is written to a temporary file, fsync'd, then linked under a name made from the run id and
 * the outcome's key: `link()` fails when the name exists, so the first request for a key is the only
 * one, across processes (an event id used twice is refused). A file stays until its run has finished
 * (retry requests until applied): after a crash of either side nothing is lost, and the log says what
 * was applied.
 */
export class Inbox {
  readonly path: string;

  constructor(dir: string) {
    this.path = join(dir, "inbox");
  }

  /** Creates the inbox folder (the owner does, to watch it). */
  create(): void {
    mkdirSync(this.path, { recursive: true });
  }

  /** The file name of an outcome: the run id, then a hash of the outcome's key. */
  static outcomeName(runId: string, stepId: string, attempt: number): string {
    const hash = sha256(`${stepId}\u0000${attempt}`).slice(0, 40);
    return `${runId}.${hash}.json`;
  }

  /**
   * Stores an outcome durably unless one with the same key is stored. Returns undefined when this call
   * stored it, or the outcome stored before it.
   */
  async putOutcome(outcome: StepOutcome): Promise<StepOutcome | undefined> {
    const name = Inbox.outcomeName(outcome.runId, outcome.stepId, outcome.attempt);
    if (await this.createOnce(name, JSON.stringify({ outcome }))) return undefined;
    const existing = this.read(name);
    return existing?.kind === "outcome" ? existing.outcome : outcome;
  }

  /** Asks the owner to retry a failed run at `version`; false when that was asked already. */
  requestRetry(runId: string, version: number): Promise<boolean> {
    return this.createOnce(`${runId}.retry-${version}.json`, JSON.stringify({ retry: { runId, version } }));
  }

  /** The names of the requests in the inbox (temporary files left out). */
  names(): string[] {
    try {
      return readdirSync(this.path).filter((name) => !name.startsWith(".") && name.endsWith(".json"));
    } catch {
      return [];
    }
  }

  /** One request, or undefined when it is gone or cannot be read (logged). */
  read(name: string): InboxRequest | undefined {
    let value: { outcome?: StepOutcome; retry?: { runId: string; version: number } };
    try {
      value = JSON.parse(readFileSync(join(this.path, name), "utf8")) as typeof value;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT")
        getLogger().error(`cannot read the inbox file ${join(this.path, name)}: ${String(error)}`);
      return undefined;
    }
    const runId = name.slice(0, name.indexOf("."));
    if (value.outcome && value.outcome.runId === runId)
      return { kind: "outcome", name, runId, outcome: value.outcome };
    if (value.retry && value.retry.runId === runId && Number.isInteger(value.retry.version))
      return { kind: "retry", name, runId, version: value.retry.version };
    getLogger().error(
      `ignoring the inbox file ${join(this.path, name)}: it is not a request for run ${runId}`,
    );
    return undefined;
  }

  /** The run a request file is for. */
  static runIdOf(name: string): string {
    return name.slice(0, name.indexOf("."));
  }

  remove(name: string): void {
    try {
      unlinkSync(join(this.path, name));
    } catch {
      // Gone already.
    }
  }

  /** Removes temporary files that a process killed in the middle of a write left behind. */
  removeLeftovers(olderThanMs = 60_000): void {
    let names: string[];
    try {
      names = readdirSync(this.path);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(TEMPORARY)) continue;
      const path = join(this.path, name);
      try {
        if (Date.now() - statSync(path).mtimeMs > olderThanMs) rmSync(path, { force: true });
      } catch {
        // Gone meanwhile.
      }
    }
  }

  /**
   * Calls `changed` when files may have arrived: on the file system's notification (fs.watch), and
   * every `pollMs` in case one is missed. Returns the function that stops watching.
   */
  watch(changed: () => void, options: InboxWatchOptions = {}): () => void {
    let watcher: FSWatcher | undefined;
    let poll: NodeJS.Timeout | undefined;
    let scheduled = false;
    const notify = () => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        changed();
      });
    };
    const pollEvery = (ms: number) => {
      clearInterval(poll);
      poll = setInterval(notify, ms);
      poll.unref();
    };
    pollEvery(options.pollMs ?? 1000);
    if (!options.pollOnly) {
      try {
        watcher = watch(this.path, { persistent: false }, notify);
        watcher.on("error", (error) => {
          getLogger().warn(`watching ${this.path} failed (${String(error)}); reading it every 50 ms instead`);
          watcher?.close();
          pollEvery(50);
        });
      } catch (error) {
        getLogger().warn(`cannot watch ${this.path} (${String(error)}); reading it every 50 ms instead`);
        pollEvery(50);
      }
    }
    return () => {
      watcher?.close();
      clearInterval(poll);
    };
  }

  /** Writes `content` under `name` unless that name exists: durable once it returns true. */
  private async createOnce(name: string, content: string): Promise<boolean> {
    this.create();
    const temporary = join(this.path, `${TEMPORARY}${randomUUID()}`);
    const file = await open(temporary, "wx");
    try {
      await file.writeFile(content);
      await file.datasync();
    } finally {
      await file.close();
    }
    try {
      await link(temporary, join(this.path, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw error;
    } finally {
      await unlink(temporary).catch(() => {});
    }
    // The new name is durable once the folder's entry is.
    const folder = await open(this.path, "r");
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
    return true;
  }
}
