import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { InvalidEventError, StorageLockedError } from "../../core/errors.ts";
import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import { getLogger } from "../../core/logger.ts";
import {
  FINISHED_STATUSES,
  type RunPage,
  type RunPatch,
  type RunQuery,
  type RunRecord,
} from "../../ports/event-store.ts";
import { applyPatch, MemoryStorage } from "../memory/memory-storage.ts";
import { GroupSync } from "./group-sync.ts";

/** Options of {@link FileStorage}. */
export interface FileStorageOptions {
  /** @default "./.tsworkflow" (or `TSWORKFLOW_DIR`) */
  dir?: string;
  /**
   * Open without the writer's lock and read the files afresh on every call: for a CLI or dashboard
   * looking at a directory that a running app writes to.
   * @default false
   */
  readOnly?: boolean;
}

/** One line of a run file: one commit, all its events, and what it changed in the run document. */
interface CommitLine {
  /** The log's version before this commit (0 for the line that creates the run). */
  v: number;
  events: unknown[];
  run: RunRecord | RunPatch;
}

/** Open files kept beyond this are closed, least recently used first. */
const MAX_OPEN_FILES = 512;
const heldLocks = new Set<string>();

/**
 * The embedded default: one append-only JSONL file per run in `dir/runs/`, one line per commit,
 * fdatasync'd (in groups) before a commit counts, with an in-memory index in front.
 * One process writes a directory at a time (a lock file says which).
 * @example
 * import { FileStorage } from "tsworkflow/local";
 * const storage = new FileStorage({ dir: "./.tsworkflow" });
 */
export class FileStorage extends MemoryStorage {
  readonly dir: string;
  readonly readOnly: boolean;
  /** Run files that could not be read, with why; those runs are left out of the index. */
  readonly corrupt = new Map<string, string>();
  private readonly runsDir: string;
  private readonly lockPath: string;
  private readonly files = new Map<string, number>();
  private readonly groupSync = new GroupSync();
  private closed = false;
  private syncFailure: Error | undefined;
  private dirFd: number | undefined;
  private readonly releaseOnExit = () => this.releaseLock();

  constructor(options: FileStorageOptions = {}) {
    super();
    this.dir = resolve(options.dir ?? process.env.TSWORKFLOW_DIR ?? ".tsworkflow");
    this.readOnly = options.readOnly ?? false;
    this.runsDir = join(this.dir, "runs");
    this.lockPath = join(this.dir, "lock");
    if (this.readOnly) return;
    mkdirSync(this.runsDir, { recursive: true });
    this.acquireLock();
    this.loadAll();
  }

  override async getRun(runId: string): Promise<RunRecord | undefined> {
    assertRunId(runId);
    if (this.readOnly) this.reload(runId);
    return this.durable(super.getRun(runId));
  }

  override async getEvents(runId: string): Promise<WorkflowEvent[]> {
    assertRunId(runId);
    if (this.readOnly) this.reload(runId);
    return this.durable(super.getEvents(runId));
  }

  override async listRuns(query: RunQuery = {}): Promise<RunPage> {
    if (this.readOnly) this.loadAll();
    return this.durable(super.listRuns(query));
  }

  /**
   * Reads answer only once what they show is on disk: a commit counts when it is fsync'd. (The engine
   * goes on with a run as soon as its commit is written, so a run's next step overlaps the sync of its
   * last commit; a kill -9 loses nothing written, a power loss at most the unsynced tail, whose steps
   * run again.)
   */
  private async durable<T>(read: Promise<T>): Promise<T> {
    const value = await read;
    await this.groupSync.barrier();
    if (this.syncFailure) throw this.syncFailure;
    return value;
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.groupSync.barrier();
    for (const fd of this.files.values()) closeSync(fd);
    this.files.clear();
    if (this.dirFd !== undefined) closeSync(this.dirFd);
    this.releaseLock();
  }

  protected override async persistCreate(run: RunRecord, event: WorkflowEvent): Promise<void> {
    this.assertWritable();
    assertRunId(run.runId);
    const fd = openSync(this.fileOf(run.runId), "wx");
    this.remember(run.runId, fd);
    writeSync(fd, `${JSON.stringify({ v: 0, events: [event], run } satisfies CommitLine)}\n`);
    // A new file is durable once its directory entry is too.
    this.dirFd ??= openSync(this.runsDir, "r");
    await Promise.all([this.groupSync.sync(fd), this.groupSync.sync(this.dirFd)]);
  }

  protected override async persistCommit(
    runId: string,
    expectedVersion: number,
    events: WorkflowEvent[],
    patch: RunPatch,
  ): Promise<void> {
    this.assertWritable();
    const fd = this.fdOf(runId);
    if (this.syncFailure) throw this.syncFailure;
    writeSync(fd, `${JSON.stringify({ v: expectedVersion, events, run: patch } satisfies CommitLine)}\n`);
    const synced: Promise<void> = this.groupSync.sync(fd).then(
      () => {},
      (error: Error) => {
        this.syncFailure ??= error;
        getLogger().error(
          `fdatasync of ${this.fileOf(runId)} failed; no further commits are accepted: ${error.message}`,
        );
      },
    );
    if (FINISHED_STATUSES.has(patch.status)) void synced.then(() => this.forgetFile(runId));
  }

  private assertWritable(): void {
    if (this.readOnly) throw new StorageLockedError(this.dir, Number(this.lockHolder() ?? 0));
  }

  private fileOf(runId: string): string {
    return join(this.runsDir, `${runId}.jsonl`);
  }

  private fdOf(runId: string): number {
    const open = this.files.get(runId);
    if (open !== undefined) {
      this.files.delete(runId);
      this.files.set(runId, open);
      return open;
    }
    const fd = openSync(this.fileOf(runId), "a");
    this.remember(runId, fd);
    return fd;
  }

  private remember(runId: string, fd: number): void {
    this.files.set(runId, fd);
    if (this.files.size <= MAX_OPEN_FILES) return;
    const [oldestId, oldestFd] = this.files.entries().next().value as [string, number];
    this.files.delete(oldestId);
    // Another commit may still be waiting for this file's sync: close after the next group sync.
    void this.groupSync.sync(oldestFd).finally(() => closeSync(oldestFd));
  }

  private forgetFile(runId: string): void {
    const fd = this.files.get(runId);
    if (fd === undefined) return;
    this.files.delete(runId);
    closeSync(fd);
  }

  private loadAll(): void {
    if (!existsSync(this.runsDir)) return;
    this.corrupt.clear();
    for (const name of readdirSync(this.runsDir)) {
      if (!name.endsWith(".jsonl")) continue;
      this.reload(name.slice(0, -".jsonl".length));
    }
  }

  /** Reads one run file into the index. A torn last line (a crash mid-write) is dropped with a warning. */
  private reload(runId: string): void {
    const path = this.fileOf(runId);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      return;
    }
    const lines = text.split("\n");
    const tail = lines.pop() ?? "";
    if (tail.length > 0) {
      getLogger().warn(
        `dropped a torn last line of ${path} (${tail.length} bytes): the process stopped in the middle of a write`,
        { runId },
      );
      if (!this.readOnly) this.truncate(path, Buffer.byteLength(text) - Buffer.byteLength(tail));
    }
    try {
      const { run, events } = this.parseRunFile(runId, lines);
      this.index(run, events);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.corrupt.set(runId, why);
      getLogger().error(`cannot read run file ${path}; the run is left out until it is repaired: ${why}`, {
        runId,
      });
    }
  }

  private parseRunFile(runId: string, lines: string[]): { run: RunRecord; events: WorkflowEvent[] } {
    let run: RunRecord | undefined;
    const events: WorkflowEvent[] = [];
    lines.forEach((line, index) => {
      const where = `run ${runId}, line ${index + 1}`;
      let commit: CommitLine;
      try {
        commit = JSON.parse(line) as CommitLine;
      } catch (cause) {
        throw new InvalidEventError(`Line ${index + 1} of the log of run ${runId} is not valid JSON`, {
          cause,
        });
      }
      if (commit.v !== events.length || !Array.isArray(commit.events)) {
        throw new InvalidEventError(
          `Line ${index + 1} of the log of run ${runId} does not follow version ${events.length}`,
        );
      }
      for (const raw of commit.events) events.push(parseEvent(raw, where));
      run = run ? applyPatch(run, commit.run as RunPatch, events.length) : (commit.run as RunRecord);
    });
    if (!run) throw new InvalidEventError(`The log of run ${runId} is empty`);
    return { run: { ...run, version: events.length }, events };
  }

  private truncate(path: string, length: number): void {
    const fd = openSync(path, "r+");
    try {
      ftruncateSync(fd, length);
    } finally {
      closeSync(fd);
    }
  }

  private lockHolder(): string | undefined {
    try {
      return readFileSync(this.lockPath, "utf8").trim();
    } catch {
      return undefined;
    }
  }

  private acquireLock(): void {
    if (heldLocks.has(this.dir)) throw new StorageLockedError(this.dir, process.pid);
    const holder = Number(this.lockHolder());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new StorageLockedError(this.dir, holder);
    }
    writeFileSync(this.lockPath, String(process.pid));
    heldLocks.add(this.dir);
    process.once("exit", this.releaseOnExit);
  }

  private releaseLock(): void {
    if (this.readOnly || !heldLocks.has(this.dir)) return;
    heldLocks.delete(this.dir);
    process.off("exit", this.releaseOnExit);
    if (this.lockHolder() === String(process.pid)) unlinkSync(this.lockPath);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
