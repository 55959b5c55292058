import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { LRUCache } from "lru-cache";
import {
  InvalidEventError,
  RunFileDamagedError,
  RunNotFoundError,
  StorageClosedError,
  StorageLockedError,
} from "../../core/errors.ts";
import { parseEvent, type WorkflowEvent } from "../../core/events.ts";
import { assertRunId } from "../../core/ids.ts";
import { getLogger } from "../../core/logger.ts";
import { optional } from "../../core/optional.ts";
import {
  booleanOption,
  checkOptionNames,
  directoryOption,
  integerOption,
  timerOption,
} from "../../core/options.ts";
import {
  type CommitResult,
  FINISHED_STATUSES,
  type RunPage,
  type RunPatch,
  type RunQuery,
  type RunRecord,
  type RunStatus,
  type StepOutcome,
} from "../../ports/event-store.ts";
import { isFromOutside } from "../../ports/inbox.ts";
import { newestFirst, pageOf } from "../../ports/run-cursor.ts";
import {
  applyPatch,
  MemoryStorage,
  outcomeKey,
  type PersistedOutcome,
  type RunState,
  runState,
} from "../memory/memory-storage.ts";
import { DirectoryLock, describeHolder, LockHeldError, liveLock } from "./directory-lock.ts";
import { copyDurably, rewriteDurably, syncPath } from "./durable-rewrite.ts";
import { FinishedIndex, type IndexEntry } from "./finished-index.ts";
import { GroupSync } from "./group-sync.ts";
import { Inbox, type InboxRequest, type InboxWatchOptions } from "./inbox.ts";
import { makeDirectory, writeFailure } from "./write-failure.ts";

/** What {@link FileStorage.repairRun} did. */
export interface RunRepair {
  runId: string;
  /** The first line of the file that could not be read (1-based). */
  damagedLine: number;
  /** The lines kept: all those before the damaged one (0: the run is gone). */
  keptLines: number;
  /** The lines cut off, the damaged one included. */
  cutLines: number;
  /** Where the file as it was is kept. */
  copy: string;
  /** The run's status at its last kept commit; left out when nothing could be kept. */
  status?: RunStatus;
}

/** Options of {@link FileStorage}. */
export interface FileStorageOptions {
  /** @default "./.tsworkflow" (or `TSWORKFLOW_DIR`) */
  dir?: string;
  /**
   * Open without the writer's lock and read the files afresh on every call: for a CLI or dashboard
   * looking at a directory that a running app writes to. A reader can still store cancellations and
   * events for the owner to pick up (see `FileControl`).
   * @default false
   */
  readOnly?: boolean;
  /**
   * Events of finished runs kept in memory after they were read (least recently used dropped first):
   * memory grows with the runs in flight, not with the runs that ever ran.
   * @default 10000
   */
  finishedCacheEvents?: number;
  /**
   * How long the directory's lock lasts without being refreshed: a holder that stopped (a crashed
   * process in another PID namespace, a frozen machine) is taken over after this. A holder in this
   * process's PID namespace that is gone (exited, or killed and not yet reaped: a zombie) is taken over
   * at once.
   * @default 10000
   */
  lockStaleMs?: number;
}

const OPTION_NAMES = Object.keys({
  dir: 0,
  readOnly: 0,
  finishedCacheEvents: 0,
  lockStaleMs: 0,
} satisfies Record<keyof FileStorageOptions, 0>);

/**
 * The options of `new FileStorage()`, checked as `LocalRuntime`'s are: `dir: ""` would be the current
 * directory without a word, and a misspelt `readonly` would take the directory's lock.
 * @throws ConfigurationError for an unknown or bad option
 */
function checkFileStorageOptions(options: FileStorageOptions): void {
  const owner = "new FileStorage()";
  checkOptionNames(owner, options, OPTION_NAMES);
  directoryOption(owner, "dir", options.dir);
  booleanOption(owner, "readOnly", options.readOnly);
  integerOption(owner, "finishedCacheEvents", options.finishedCacheEvents, 1);
  timerOption(owner, "lockStaleMs", options.lockStaleMs, 1);
}

/** One line of a run file: one commit, all its events, and what it changed in the run document. */
interface CommitLine {
  /** The log's version before this commit (0 for the line that creates the run). */
  v: number;
  events: unknown[];
  run: RunRecord | RunPatch;
}

/** What the owner does with a request another process left in the inbox. */
export type InboxListener = (
  request:
    | { kind: "outcome"; runId: string; stepId: string; attempt: number }
    | { kind: "retry"; runId: string; version: number },
) => Promise<void>;

/** How long the inbox files of a finished run are kept (their keys stay taken meanwhile). */
const INBOX_RETENTION_MS = 10 * 60_000;
/** Open files kept beyond this are closed, least recently used first. */
const MAX_OPEN_FILES = 512;
const heldLocks = new Set<string>();

/**
 * The embedded default: one append-only JSONL file per run in `dir/runs/`, one line per commit,
 * fdatasync'd (in groups) before a commit counts. Runs in flight are kept in memory; finished runs are
 * listed from `finished.jsonl` and read back from their files on demand (a bounded cache keeps the
 * recent ones), so opening a directory reads only the runs in flight. Cancellations and events (from
 * this process or any other) are files in `dir/inbox/`. One process writes a directory at a time: a
 * lock (`dir/lock/`) says which.
 * @example
 * import { FileStorage } from "tsworkflow/local";
 * const storage = new FileStorage({ dir: "./.tsworkflow" });
 */
export class FileStorage extends MemoryStorage {
  readonly dir: string;
  readonly readOnly: boolean;
  /**
   * Run files that could not be read, with why; those runs are left out (reading them throws
   * `RunFileDamagedError`, and their idempotency keys stay taken).
   */
  readonly corrupt = new Map<string, string>();
  /** The run whose damaged file a read is about to report in an error, so it is not logged too. */
  private damageTold: string | undefined;
  /** The first line that cannot be read of each file in `corrupt`. */
  private readonly damagedLines = new Map<string, number>();
  readonly inbox: Inbox;
  private readonly runsDir: string;
  private readonly finishedIndex: FinishedIndex;
  private readonly finishedCache: LRUCache<string, RunState>;
  private readonly files = new Map<string, number>();
  private readonly groupSync = new GroupSync();
  private readonly lock: DirectoryLock | undefined;
  private readonly lockStaleMs: number;
  /** Inbox files taken in, by run (removed when the run finishes). */
  private readonly inboxFiles = new Map<string, Set<string>>();
  private readonly seenInbox = new Set<string>();
  /** Inbox files of finished runs, removed once `INBOX_RETENTION_MS` has passed. */
  private retired: { names: string[]; at: number }[] = [];
  /** For readers: the size and mtime of each run file when it was last read. */
  private readonly readAt = new Map<string, string>();
  private sortedCache: { runId: string; createdAt: string }[] | undefined;
  private closed = false;
  private syncFailure: Error | undefined;
  private lost: StorageLockedError | undefined;
  private dirFd: number | undefined;
  private readonly releaseOnExit = () => this.releaseLock();

  /** @throws ConfigurationError for an unknown or bad option */
  constructor(options: FileStorageOptions = {}) {
    super();
    checkFileStorageOptions(options);
    // An empty TSWORKFLOW_DIR counts as unset, as in the CLI: not the current directory.
    this.dir = resolve(options.dir ?? (process.env.TSWORKFLOW_DIR || ".tsworkflow"));
    this.readOnly = options.readOnly ?? false;
    this.lockStaleMs = options.lockStaleMs ?? 10_000;
    this.runsDir = join(this.dir, "runs");
    this.inbox = new Inbox(this.dir);
    this.finishedIndex = new FinishedIndex(this.dir);
    this.finishedCache = new LRUCache<string, RunState>({
      maxSize: options.finishedCacheEvents ?? 10_000,
      sizeCalculation: (state) => state.events.length + 1,
    });
    if (this.readOnly) return;
    const next = `Nothing was started; start again once the directory can be written, or use another one (configure({ dir }), TSWORKFLOW_DIR). To read its runs only: new FileStorage({ dir: ${JSON.stringify(this.dir)}, readOnly: true }) or the CLI.`;
    try {
      makeDirectory(this.runsDir);
      this.lock = this.acquireLock();
    } catch (error) {
      throw writeFailure(error, this.dir, next);
    }
    try {
      this.open();
    } catch (error) {
      this.releaseLock();
      throw writeFailure(error, this.dir, next);
    }
  }

  /** How many finished runs are held in memory now (at most `finishedCacheEvents` events in all). */
  get cachedFinishedRuns(): number {
    return this.finishedCache.size;
  }

  /** How many runs are held in memory with their whole log: those in flight. */
  get liveRuns(): number {
    return this.states.size;
  }

  /** @throws RunFileDamagedError for a run whose file cannot be read */
  override async getRun(runId: string): Promise<RunRecord | undefined> {
    assertRunId(runId);
    const run = await this.durable(this.tellingDamage(runId, () => super.getRun(runId)));
    if (!run) this.assertNotDamaged(runId);
    return run;
  }

  /** @throws RunFileDamagedError for a run whose file cannot be read */
  override async getEvents(runId: string): Promise<WorkflowEvent[]> {
    assertRunId(runId);
    const events = await this.durable(this.tellingDamage(runId, () => super.getEvents(runId)));
    if (events.length === 0) this.assertNotDamaged(runId);
    return events;
  }

  /**
   * Calls `read`, which reads `runId`'s file (if at all) before it first awaits, without logging that the file
   * is damaged: the caller throws `RunFileDamagedError` saying so (the CLI printed it twice).
   */
  private tellingDamage<T>(runId: string, read: () => T): T {
    this.damageTold = runId;
    try {
      return read();
    } finally {
      this.damageTold = undefined;
    }
  }

  override async listRuns(query: RunQuery = {}): Promise<RunPage> {
    if (this.readOnly) this.refreshAll();
    const runs = query.tags ? this.positionsOf(this.tagIndex.runsWith(query.tags)) : this.sorted();
    const matching = runs.filter(({ runId }) => {
      const summary = this.summaryOf(runId);
      return (
        summary !== undefined &&
        (!query.status || summary.status === query.status) &&
        (!query.workflowName || summary.workflowName === query.workflowName)
      );
    });
    const page = pageOf(matching, query);
    const documents: RunRecord[] = [];
    for (const { runId } of page.runs) {
      const run = this.documentOf(runId);
      if (run) documents.push(structuredClone(run));
    }
    return this.durable(
      Promise.resolve(
        page.nextCursor ? { runs: documents, nextCursor: page.nextCursor } : { runs: documents },
      ),
    );
  }

  /**
   * The requests stored in the inbox for a run that its log has not taken in yet: a cancellation, events,
   * a child's result, a retry. With no app owning the directory they wait for the next one; with one, for
   * a moment. The CLI's `runs show` lists them.
   * @example
   * const reader = new FileStorage({ dir: "./.tsworkflow", readOnly: true });
   * for (const request of await reader.storedRequests("run_0abc")) console.log(request.kind);
   */
  async storedRequests(runId: string): Promise<InboxRequest[]> {
    assertRunId(runId);
    const state = this.state(runId);
    if (!state) return [];
    return this.inbox
      .names()
      .filter((name) => Inbox.runIdOf(name) === runId)
      .flatMap((name) => this.inbox.read(name) ?? [])
      .filter((request) =>
        request.kind === "retry"
          ? state.run.status === "failed" && state.run.version <= request.version
          : // A finished run takes nothing in any more.
            !FINISHED_STATUSES.has(state.run.status) &&
            !state.consumed.has(outcomeKey(request.outcome.stepId, request.outcome.attempt)),
      );
  }

  /**
   * Repairs a run whose file is damaged (`RunFileDamagedError`), as the README's "Repairing a damaged run
   * file" does by hand: keeps a copy of the file in `<dir>/damaged/`, cuts the file before its first damaged
   * line, and takes the run's lines out of `finished.jsonl`. The run then goes on from its last kept commit
   * once a runtime on this storage recovers it; the steps recorded in the lines cut off run again. With its
   * first line damaged nothing can be kept: the file is moved away and the run's idempotency key is free
   * again. Only the directory's owner repairs, so the app must be stopped (`tsworkflow runs repair <runId>`).
   * @example
   * const storage = new FileStorage({ dir: "./.tsworkflow" });   // the app stopped
   * const repair = await storage.repairRun("run_0abc");
   * await storage.close();
   * @returns what was done, or undefined when the run's file is not damaged
   * @throws RunNotFoundError when the run has no file; StorageLockedError on a read-only storage
   */
  async repairRun(runId: string): Promise<RunRepair | undefined> {
    assertRunId(runId);
    this.assertWritable();
    const path = this.fileOf(runId);
    if (!existsSync(path)) throw new RunNotFoundError(runId);
    if (this.states.has(runId) || this.tellingDamage(runId, () => this.readRunFile(runId))) return undefined;
    const damagedLine = this.damagedLines.get(runId) ?? 1;
    // Numbered as `readRunFile` numbers them (its read cut a torn last line off: the file ends in a newline).
    const lines = readFileSync(path, "utf8").split("\n").slice(0, -1);
    const copy = join(
      this.dir,
      "damaged",
      `${runId}.${new Date().toISOString().replace(/[:.]/g, "-")}.jsonl`,
    );
    makeDirectory(dirname(copy));
    copyDurably(path, copy);
    this.forgetFile(runId);
    const kept = lines.slice(0, damagedLine - 1);
    if (kept.length > 0) rewriteDurably(path, `${kept.join("\n")}\n`);
    else {
      unlinkSync(path);
      syncPath(this.runsDir);
      // A key is known to be taken only from a readable first line or the index: it is free again.
      for (const [key, holder] of this.idempotencyKeys)
        if (holder === runId) this.idempotencyKeys.delete(key);
    }
    this.finishedIndex.remove(runId);
    this.finishedCache.delete(runId);
    this.corrupt.delete(runId);
    this.damagedLines.delete(runId);
    this.sortedCache = undefined;
    const state = kept.length > 0 ? this.readRunFile(runId) : undefined;
    if (state && FINISHED_STATUSES.has(state.run.status)) this.indexLate(state);
    else if (state) this.index(state);
    return {
      runId,
      damagedLine,
      keptLines: kept.length,
      cutLines: lines.length - kept.length,
      copy,
      ...optional("status", state?.run.status),
    };
  }

  /** @throws RunFileDamagedError when the idempotency key belongs to a run whose file cannot be read */
  override async createRun(...args: Parameters<MemoryStorage["createRun"]>) {
    this.assertWritable();
    const key = args[0].run.idempotencyKey;
    const holder = key === undefined ? undefined : this.idempotencyKeys.get(key);
    // The key's run is there but cannot be read: a second run for its key would do its work again.
    if (holder !== undefined && !this.state(holder)) this.assertNotDamaged(holder);
    return super.createRun(...args);
  }

  override commit(
    runId: string,
    expectedVersion: number,
    events: WorkflowEvent[],
    patch: RunPatch,
  ): Promise<CommitResult> {
    // Not an async wrapper of its own: the commit is the hot path, and each async layer costs a promise.
    const refused = this.writeRefusal();
    if (refused) return Promise.reject(refused);
    return super.commit(runId, expectedVersion, events, patch);
  }

  override async putOutcome(outcome: StepOutcome): Promise<boolean> {
    assertRunId(outcome.runId);
    // A reader stores only requests (cancellations, events) for the owner to pick up; a closed storage, none.
    if (isFromOutside(outcome.stepId)) this.assertOpen();
    else this.assertWritable();
    return super.putOutcome(outcome);
  }

  /**
   * Asks the owner of the directory to retry a failed run at `version` (a reader's `retryRun`): false
   * when that was asked already.
   */
  async requestRetry(runId: string, version: number): Promise<boolean> {
    assertRunId(runId);
    this.assertOpen();
    return this.inbox.requestRetry(runId, version);
  }

  /**
   * The process that holds the directory now, described (`another process` when its lock file cannot be
   * read), or undefined when none does.
   */
  holder(): string | undefined {
    const lock = liveLock(this.dir, { staleMs: this.lockStaleMs });
    return lock && describeHolder(lock.holder);
  }

  /**
   * The owner takes in what other processes leave in the inbox: each new cancellation, event or child
   * result is stored as a pending outcome and handed to `listener` (which wakes the run), each retry
   * request is handed to it and removed once it resolves. Returns the function that stops watching.
   */
  watchInbox(listener: InboxListener, options: InboxWatchOptions = {}): () => void {
    this.assertWritable();
    this.inbox.create();
    let scanning = Promise.resolve();
    const scan = () => {
      scanning = scanning
        .then(() => this.takeInbox(listener))
        .catch((error: unknown) => {
          getLogger().error(`reading the inbox of ${this.dir} failed: ${String(error)}`);
        });
    };
    scan();
    return this.inbox.watch(scan, options);
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

  /**
   * Waits for the commits being synced, closes the files and lets go of the directory's lock. Every write is
   * refused from then on with `StorageClosedError`; reads still answer.
   */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.groupSync.barrier();
    for (const fd of this.files.values()) closeSync(fd);
    this.files.clear();
    if (this.dirFd !== undefined) closeSync(this.dirFd);
    this.finishedIndex.close();
    this.releaseLock();
  }

  protected override state(runId: string): RunState | undefined {
    const live = this.states.get(runId);
    if (this.readOnly) return this.refreshRun(runId, live);
    if (live) return live;
    const cached = this.finishedCache.get(runId);
    if (cached) return cached;
    if (!this.finishedIndex.entries.has(runId)) return undefined;
    const loaded = this.readRunFile(runId);
    if (loaded) this.finishedCache.set(runId, loaded);
    return loaded;
  }

  protected override index(state: RunState): void {
    super.index(state);
    this.sortedCache = undefined;
  }

  protected override async persistCreate(run: RunRecord, event: WorkflowEvent): Promise<void> {
    this.assertWritable();
    assertRunId(run.runId);
    const path = this.fileOf(run.runId);
    let fd: number;
    try {
      // Appending, like every later write of this fd: a write cut back (see `cutBack`) leaves no gap.
      fd = openSync(path, "ax");
    } catch (error) {
      throw writeFailure(error, path, "The run was not created.");
    }
    this.remember(run.runId, fd);
    try {
      this.write(fd, { v: 0, events: [event], run }, "The run was not created.");
    } catch (error) {
      this.forgetFile(run.runId);
      unlinkSync(path);
      throw error;
    }
    // A new file is durable once its directory entry is too.
    this.dirFd ??= openSync(this.runsDir, "r");
    await Promise.all([this.groupSync.sync(fd), this.groupSync.sync(this.dirFd)]);
  }

  /** Written before the commit returns; synced in the next group (see `durable`). */
  protected override persistCommit(
    runId: string,
    expectedVersion: number,
    events: WorkflowEvent[],
    patch: RunPatch,
  ): undefined {
    this.assertWritable();
    const fd = this.fdOf(runId);
    if (this.syncFailure) throw this.syncFailure;
    if (!FINISHED_STATUSES.has(patch.status) && this.finishedIndex.isFinished(runId)) this.goesOnAgain(runId);
    this.write(
      fd,
      { v: expectedVersion, events, run: patch },
      "The commit was not kept: the run goes on from its last commit once the disk can be written again (an activation that failed is retried, later and later).",
    );
    const version = expectedVersion + events.length;
    this.groupSync.whenSynced(fd, (error) => {
      if (error) this.syncFailed(runId, error);
      else if (FINISHED_STATUSES.has(patch.status)) this.finished(runId, version);
    });
    return undefined;
  }

  /** A run file that could not be synced may have lost what was written: no further commits are accepted. */
  private syncFailed(runId: string, error: Error): void {
    this.syncFailure ??= error;
    getLogger().error(
      `fdatasync of ${this.fileOf(runId)} failed; no further commits are accepted: ${error.message}`,
    );
  }

  /**
   * A finished run goes on (a retry): the index says so before its file does, synced, as an open skips the
   * file of a run the index lists as finished. (Should the file's write fail after, the index lists a run
   * whose file says it finished: the next open reads that file and lists the run as finished again.)
   */
  private goesOnAgain(runId: string): void {
    const state = this.state(runId) as RunState;
    this.finishedIndex.append(state.run, { sync: true });
  }

  protected override committed(state: RunState, before: RunRecord): void {
    const { run } = state;
    if (FINISHED_STATUSES.has(run.status) || !FINISHED_STATUSES.has(before.status)) return;
    // A finished run goes on (a retry): it is in flight again, for this process and the next.
    this.finishedCache.delete(run.runId);
    this.states.set(run.runId, state);
  }

  protected override async persistOutcome(outcome: StepOutcome): Promise<PersistedOutcome> {
    if (!isFromOutside(outcome.stepId)) return { stored: true };
    const { runId, stepId, attempt } = outcome;
    const name = Inbox.outcomeName(runId, stepId, attempt);
    this.seenInbox.add(name);
    const existing = await this.inbox.putOutcome(outcome);
    if (existing) return { stored: false, existing };
    if (!this.readOnly) this.filesOf(runId).add(name);
    return { stored: true };
  }

  /** A run's last commit is on disk: it leaves memory for the index and the bounded cache. */
  private finished(runId: string, version: number): void {
    const state = this.states.get(runId);
    if (!state || state.run.version !== version || !FINISHED_STATUSES.has(state.run.status)) return;
    try {
      this.finishedIndex.append(state.run);
    } catch (error) {
      // Called back from a sync: thrown here, it would end the process. The run stays in memory meanwhile.
      getLogger().error(String(error), { runId });
      return;
    }
    this.states.delete(runId);
    this.outcomes.delete(runId);
    this.finishedCache.set(runId, state);
    this.forgetFile(runId);
    this.retire(runId, Date.now());
  }

  /**
   * A finished run's inbox files are removed `INBOX_RETENTION_MS` after it finished, not at once: while
   * a file is there, its key stays taken, so a request that looked at the run just before it finished
   * cannot store an event id the log has already consumed.
   */
  private retire(runId: string, finishedAt: number, names = this.inboxFiles.get(runId)): void {
    this.inboxFiles.delete(runId);
    if (names && names.size > 0) this.retired.push({ names: [...names], at: finishedAt });
  }

  private sweepRetired(): void {
    const due = Date.now() - INBOX_RETENTION_MS;
    if (!this.retired.some((entry) => entry.at <= due)) return;
    for (const entry of this.retired.filter((candidate) => candidate.at <= due)) {
      for (const name of entry.names) {
        this.inbox.remove(name);
        this.seenInbox.delete(name);
      }
    }
    this.retired = this.retired.filter((entry) => entry.at > due);
  }

  private assertWritable(): void {
    const refused = this.writeRefusal();
    if (refused) throw refused;
  }

  /** Why this storage may not write (closed, the lock lost, or read-only), or undefined when it may. */
  private writeRefusal(): StorageClosedError | StorageLockedError | undefined {
    if (this.closed) return this.closedError();
    if (this.lost) return this.lost;
    if (this.readOnly)
      return new StorageLockedError(
        this.dir,
        this.holder() ?? "no process, but this FileStorage is read-only",
      );
    return undefined;
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): StorageClosedError {
    return new StorageClosedError(
      `The FileStorage of ${this.dir}`,
      "It let go of the directory, which another process may hold by now: to write there again, open it anew (new FileStorage({ dir }), or a new LocalRuntime or test environment).",
    );
  }

  private acquireLock(): DirectoryLock {
    if (heldLocks.has(this.dir))
      throw new StorageLockedError(
        this.dir,
        `this process (${process.pid}): close the other FileStorage first`,
      );
    let lock: DirectoryLock;
    try {
      lock = DirectoryLock.acquire(this.dir, {
        staleMs: this.lockStaleMs,
        onLost: (holder) => {
          this.lost = new StorageLockedError(this.dir, describeHolder(holder));
          getLogger().error(
            `lost the lock of ${this.dir} to ${describeHolder(holder)}: this process stopped refreshing it for ${this.lockStaleMs} ms (frozen or overloaded); no further commits are accepted here`,
          );
        },
      });
    } catch (error) {
      if (error instanceof LockHeldError)
        throw new StorageLockedError(this.dir, describeHolder(error.holder));
      throw error;
    }
    heldLocks.add(this.dir);
    process.once("exit", this.releaseOnExit);
    return lock;
  }

  private releaseLock(): void {
    if (!this.lock || !heldLocks.has(this.dir)) return;
    heldLocks.delete(this.dir);
    process.off("exit", this.releaseOnExit);
    this.lock.release();
  }

  /** Takes the index's idempotency keys and tags in (finished runs are not kept in memory). */
  private indexFinished(): void {
    for (const entry of this.finishedIndex.entries.values()) this.learn(entry);
  }

  /** A finished run's idempotency key and tags, from its index entry. */
  private learn(entry: IndexEntry): void {
    if (entry.idempotencyKey !== undefined) this.idempotencyKeys.set(entry.idempotencyKey, entry.runId);
    if (entry.tags) this.tagIndex.set(entry.runId, entry.tags);
  }

  /**
   * Opening: the index lists the finished runs; every other run file is a run in flight (or one that
   * finished just before a crash, see `indexLate`) and is read into memory.
   */
  private open(): void {
    this.finishedIndex.refresh(true);
    this.indexFinished();
    for (const runId of this.runFileIds()) {
      if (this.finishedIndex.isFinished(runId)) continue;
      const state = this.readRunFile(runId);
      if (!state) continue;
      if (FINISHED_STATUSES.has(state.run.status)) this.indexLate(state);
      else this.index(state);
    }
    this.inbox.removeLeftovers();
    for (const name of this.inbox.names()) {
      const request = this.inbox.read(name);
      if (request?.kind !== "outcome") continue;
      this.takeOutcome(request);
    }
  }

  /**
   * A run whose file says it finished but that the index does not list: its index line was lost (written
   * after the run's last commit was synced, and not synced itself), or never written (a crash or a full disk
   * in between). It is listed now, its key and tags taken as a listed run's. Syncing every index line
   * would cost a second fdatasync per finished run; as the run's file, synced first, always has the
   * answer, this rebuild is enough.
   */
  private indexLate(state: RunState): void {
    let entry: IndexEntry;
    try {
      entry = this.finishedIndex.append(state.run);
    } catch (error) {
      getLogger().error(String(error), { runId: state.run.runId });
      // Held in memory instead, as a reader holds a run the index does not list yet.
      this.index(state);
      return;
    }
    this.learn(entry);
  }

  /** Takes in an outcome file: pending for its run unless its log consumed it; retired for a finished run. */
  private takeOutcome(request: Extract<InboxRequest, { kind: "outcome" }>): boolean {
    const { name, runId, outcome } = request;
    this.seenInbox.add(name);
    const live = this.states.get(runId);
    if (!live || FINISHED_STATUSES.has(live.run.status)) {
      const entry = this.finishedIndex.entries.get(runId);
      if (!live && !entry) {
        // No such run: no key of it can have been consumed.
        this.inbox.remove(name);
        this.seenInbox.delete(name);
      } else {
        this.retire(runId, entry ? Date.parse(entry.updatedAt) : Date.now(), new Set([name]));
      }
      return false;
    }
    this.filesOf(runId).add(name);
    const key = outcomeKey(outcome.stepId, outcome.attempt);
    if (live.consumed.has(key) || this.outcomes.get(runId)?.has(key)) return false;
    this.pendingOf(runId).set(key, outcome);
    return true;
  }

  private async takeInbox(listener: InboxListener): Promise<void> {
    if (this.closed) return;
    this.sweepRetired();
    for (const name of this.inbox.names()) {
      if (this.seenInbox.has(name)) continue;
      const request = this.inbox.read(name);
      if (!request) {
        this.seenInbox.add(name);
        continue;
      }
      if (request.kind === "outcome") {
        if (!this.takeOutcome(request)) continue;
        const { stepId, attempt } = request.outcome;
        await listener({ kind: "outcome", runId: request.runId, stepId, attempt });
        continue;
      }
      this.seenInbox.add(name);
      try {
        await listener({ kind: "retry", runId: request.runId, version: request.version });
      } catch (error) {
        getLogger().warn(`retry request ${name} not applied: ${String(error)}`, { runId: request.runId });
      }
      // Closed meanwhile, maybe before the retry was stored: the next owner reads the request (and skips it
      // if it was applied, as its version says).
      if (this.closed) return;
      this.inbox.remove(name);
      this.seenInbox.delete(name);
    }
  }

  private filesOf(runId: string): Set<string> {
    let names = this.inboxFiles.get(runId);
    if (!names) {
      names = new Set();
      this.inboxFiles.set(runId, names);
    }
    return names;
  }

  private runFileIds(): string[] {
    if (!existsSync(this.runsDir)) return [];
    return readdirSync(this.runsDir)
      .filter((name) => name.endsWith(".jsonl"))
      .map((name) => name.slice(0, -".jsonl".length));
  }

  /** Newest first, every run known: those in memory and those in the index. */
  private sorted(): { runId: string; createdAt: string }[] {
    if (this.sortedCache) return this.sortedCache;
    const positions = new Map<string, { runId: string; createdAt: string }>();
    for (const entry of this.finishedIndex.entries.values())
      positions.set(entry.runId, { runId: entry.runId, createdAt: entry.createdAt });
    for (const { run } of this.states.values())
      positions.set(run.runId, { runId: run.runId, createdAt: run.createdAt });
    this.sortedCache = [...positions.values()].sort(newestFirst);
    return this.sortedCache;
  }

  /** The runs of `runIds` in memory or in the index, newest first. */
  private positionsOf(runIds: string[]): { runId: string; createdAt: string }[] {
    return runIds
      .flatMap((runId) => {
        const run = this.states.get(runId)?.run ?? this.finishedIndex.entries.get(runId);
        return run ? [{ runId, createdAt: run.createdAt }] : [];
      })
      .sort(newestFirst);
  }

  /** Status and workflow of a run, without reading its file. */
  private summaryOf(runId: string): { status: RunStatus; workflowName: string } | undefined {
    const live = this.states.get(runId);
    if (live) return live.run;
    return this.finishedIndex.entries.get(runId);
  }

  private documentOf(runId: string): RunRecord | undefined {
    const live = this.states.get(runId) ?? this.finishedCache.peek(runId);
    if (live) return live.run;
    const entry: IndexEntry | undefined = this.finishedIndex.entries.get(runId);
    return entry && this.finishedIndex.document(entry);
  }

  /** A reader's view of all runs: the index's new lines, and every run file not listed as finished. */
  private refreshAll(): void {
    this.finishedIndex.refresh();
    this.indexFinished();
    for (const runId of this.runFileIds()) {
      if (this.finishedIndex.isFinished(runId)) {
        this.states.delete(runId);
        continue;
      }
      this.refreshRun(runId, this.states.get(runId));
    }
    this.sortedCache = undefined;
  }

  /** A reader reads a run file again when it changed since the last read. */
  private refreshRun(runId: string, known: RunState | undefined): RunState | undefined {
    let stamp: string;
    try {
      const stat = statSync(this.fileOf(runId));
      stamp = `${stat.size}:${stat.mtimeMs}`;
    } catch {
      this.corrupt.delete(runId);
      return undefined;
    }
    if (known && this.readAt.get(runId) === stamp) return known;
    const cached = this.finishedCache.get(runId);
    if (cached && this.readAt.get(runId) === stamp) return cached;
    const state = this.readRunFile(runId);
    if (!state) return undefined;
    this.readAt.set(runId, stamp);
    if (FINISHED_STATUSES.has(state.run.status) && this.finishedIndex.isFinished(runId)) {
      this.states.delete(runId);
      this.finishedCache.set(runId, state);
    } else {
      // In flight, or finished and not in the index yet: listed from memory until the index has it.
      this.index(state);
    }
    return state;
  }

  private fileOf(runId: string): string {
    return join(this.runsDir, `${runId}.jsonl`);
  }

  /**
   * Appends one commit line. A write that fails (a full disk) leaves nothing behind: the bytes it wrote
   * are cut off before it throws `StorageWriteError` saying `next`, so the retried commit starts a line of
   * its own.
   */
  private write(fd: number, line: CommitLine, next: string): void {
    const text = `${JSON.stringify(line)}\n`;
    let written = 0;
    try {
      // The string as it is (no Buffer on the heap per commit); a short write, rare on a local file, goes
      // on from where it stopped.
      written = writeSync(fd, text);
      const length = Buffer.byteLength(text);
      if (written === length) return;
      const buffer = Buffer.from(text);
      while (written < length) written += writeSync(fd, buffer, written);
    } catch (error) {
      if (written > 0) this.cutBack(fd, written);
      throw writeFailure(error, this.dir, next);
    }
  }

  /**
   * Cuts the `written` bytes of a failed write off the end of a run file. Should that fail too, the file
   * ends in a partial line that nothing may follow: no further commits are accepted here, and the next
   * open drops that line as a torn last line.
   */
  private cutBack(fd: number, written: number): void {
    try {
      ftruncateSync(fd, fstatSync(fd).size - written);
    } catch (error) {
      this.syncFailure ??= error as Error;
      getLogger().error(
        `could not cut a failed write off a run file in ${this.runsDir}; no further commits are accepted: restart the app once the disk can be written (${String(error)})`,
      );
    }
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
    // Another commit may still be waiting for this file's sync: close after the next group sync (which,
    // failing, is a failed sync like any other).
    this.groupSync.whenSynced(oldestFd, (error) => {
      closeSync(oldestFd);
      if (error) this.syncFailed(oldestId, error);
    });
  }

  private forgetFile(runId: string): void {
    const fd = this.files.get(runId);
    if (fd === undefined) return;
    this.files.delete(runId);
    closeSync(fd);
  }

  /** Reads one run file. A torn last line (a crash mid-write) is dropped with a warning. */
  private readRunFile(runId: string): RunState | undefined {
    const path = this.fileOf(runId);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      this.corrupt.delete(runId);
      return undefined;
    }
    const lines = text.split("\n");
    const tail = lines.pop() ?? "";
    if (tail.length > 0) {
      getLogger().warn(
        `dropped a torn last line of ${path} (${tail.length} bytes): the process stopped in the middle of a write`,
        { runId },
      );
      if (!this.readOnly) truncate(path, Buffer.byteLength(text) - Buffer.byteLength(tail));
    }
    try {
      const { run, events } = parseRunFile(runId, lines);
      this.corrupt.delete(runId);
      this.damagedLines.delete(runId);
      return runState(run, events);
    } catch (error) {
      const { line, cause } = error as DamagedLine;
      const why = cause instanceof Error ? cause.message : String(cause);
      this.corrupt.set(runId, why);
      this.damagedLines.set(runId, line);
      // Its key stays taken: a second run for it would do the damaged run's work again.
      const key = line > 1 ? firstDocument(lines[0] as string).idempotencyKey : undefined;
      if (key !== undefined) this.idempotencyKeys.set(key, runId);
      if (this.damageTold !== runId) getLogger().error(this.damaged(runId).message, { runId });
      return undefined;
    }
  }

  /** @throws RunFileDamagedError when the run's file could not be read */
  private assertNotDamaged(runId: string): void {
    if (this.corrupt.has(runId)) throw this.damaged(runId);
  }

  private damaged(runId: string): RunFileDamagedError {
    return new RunFileDamagedError(
      runId,
      this.fileOf(runId),
      this.corrupt.get(runId) ?? "",
      this.damagedLines.get(runId) ?? 1,
    );
  }
}

/** The first line of a run file that cannot be read (1-based), and why. */
interface DamagedLine {
  line: number;
  cause: unknown;
}

/** The run document of a run file's first line (read only for its idempotency key: not validated). */
function firstDocument(line: string): Partial<RunRecord> {
  return ((JSON.parse(line) as Partial<CommitLine>).run ?? {}) as Partial<RunRecord>;
}

/** @throws DamagedLine naming the first line that cannot be read */
function parseRunFile(runId: string, lines: string[]): { run: RunRecord; events: WorkflowEvent[] } {
  let run: RunRecord | undefined;
  const events: WorkflowEvent[] = [];
  lines.forEach((line, index) => {
    try {
      run = applyLine(runId, line, index + 1, run, events);
    } catch (cause) {
      throw { line: index + 1, cause } satisfies DamagedLine;
    }
  });
  if (!run)
    throw { line: 1, cause: new InvalidEventError(`The log of run ${runId} is empty`) } satisfies DamagedLine;
  return { run: { ...run, version: events.length }, events };
}

/** Adds the events of one line (number `at`) to `events`; returns the run document after it. */
function applyLine(
  runId: string,
  line: string,
  at: number,
  run: RunRecord | undefined,
  events: WorkflowEvent[],
): RunRecord {
  let commit: CommitLine;
  try {
    commit = JSON.parse(line) as CommitLine;
  } catch (cause) {
    throw new InvalidEventError(`Line ${at} of the log of run ${runId} is not valid JSON`, { cause });
  }
  if (commit.v !== events.length || !Array.isArray(commit.events)) {
    throw new InvalidEventError(
      `Line ${at} of the log of run ${runId} does not follow version ${events.length}`,
    );
  }
  for (const raw of commit.events) events.push(parseEvent(raw, `run ${runId}, line ${at}`));
  return run ? applyPatch(run, commit.run as RunPatch, events.length) : (commit.run as RunRecord);
}

function truncate(path: string, length: number): void {
  const fd = openSync(path, "r+");
  try {
    ftruncateSync(fd, length);
  } finally {
    closeSync(fd);
  }
}
