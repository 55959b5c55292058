import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { getLogger } from "../../core/logger.ts";
import { optional } from "../../core/optional.ts";
import type { RunTags } from "../../core/tags.ts";
import { FINISHED_STATUSES, type RunRecord, type RunStatus } from "../../ports/event-store.ts";
import { rewriteDurably } from "./durable-rewrite.ts";
import { writeFailure } from "./write-failure.ts";

/** Where a run's document is in the index, and what listing needs without reading it. */
export interface IndexEntry {
  runId: string;
  workflowName: string;
  status: RunStatus;
  createdAt: string;
  /** When it finished (or went on again). */
  updatedAt: string;
  idempotencyKey?: string;
  tags?: RunTags;
  offset: number;
  length: number;
}

/**
 * `<dir>/finished.jsonl`: the document of each run as it finished (one line each, appended once the
 * run's last commit is fsync'd), and again when a retry makes it run on. Opening a directory reads this
 * file instead of every run's log, and keeps only these small entries in memory; a document is read
 * back with one positioned read. A line lost in a crash is rebuilt from the run's file at the next open.
 */
export class FinishedIndex {
  /** The latest entry of each run listed. */
  readonly entries = new Map<string, IndexEntry>();
  private readonly path: string;
  private fd: number | undefined;
  private writable = false;
  /** Bytes read so far: everything before is in `entries`. */
  private size = 0;

  constructor(dir: string) {
    this.path = join(dir, "finished.jsonl");
  }

  /** True when the index says the run has finished (a retried run is listed again as running). */
  isFinished(runId: string): boolean {
    const entry = this.entries.get(runId);
    return entry !== undefined && FINISHED_STATUSES.has(entry.status);
  }

  /**
   * Reads the lines appended since the last call. A torn last line (a crash mid-append) is cut off when
   * `repair` is set (by the owner, before it appends), else left for a later call.
   */
  refresh(repair = false): void {
    const fd = this.open(repair ? "r+" : "r");
    if (fd === undefined) return;
    const end = fstatSync(fd).size;
    if (end <= this.size) return;
    const buffer = Buffer.alloc(end - this.size);
    readSync(fd, buffer, 0, buffer.length, this.size);
    let start = 0;
    for (;;) {
      const newline = buffer.indexOf(10, start);
      if (newline === -1) break;
      this.add(buffer.subarray(start, newline), this.size + start);
      start = newline + 1;
    }
    if (start < buffer.length && repair) {
      getLogger().warn(`dropped a torn last line of ${this.path} (${buffer.length - start} bytes)`);
      ftruncateSync(fd, this.size + start);
    }
    this.size += start;
  }

  /**
   * Appends the run's document (the owner only), fdatasync'd before it returns when `sync` is set. A write
   * that fails leaves nothing behind: it throws `StorageWriteError` once the bytes it wrote are cut off.
   */
  append(run: RunRecord, options: { sync?: boolean } = {}): IndexEntry {
    const fd = this.open("a+") as number;
    // Written at the end this index has read up to (the owner is its only writer).
    const line = Buffer.from(`${JSON.stringify(run)}\n`);
    const offset = this.size;
    try {
      let written = 0;
      while (written < line.length)
        written += writeSync(fd, line, written, line.length - written, offset + written);
      if (options.sync) fdatasyncSync(fd);
    } catch (error) {
      this.cutBack(fd, offset);
      throw writeFailure(
        error,
        this.path,
        `The index line of run ${run.runId} was not kept; the run's own file still says how it ended, and the next start of the app reads it from there.`,
      );
    }
    this.size += line.length;
    return this.remember(run, offset, line.length - 1);
  }

  /**
   * Takes every line of `runId` out of the file (the owner only, repairing the run), which is rewritten whole
   * and read again. @returns how many lines were taken out
   */
  remove(runId: string): number {
    if (!this.entries.has(runId)) return 0;
    const lines = readFileSync(this.path, "utf8").split("\n");
    const kept = lines.filter((line) => !line.includes(runId) || runIdOf(line) !== runId);
    rewriteDurably(this.path, kept.join("\n"));
    this.close();
    this.entries.clear();
    this.size = 0;
    this.refresh(true);
    return lines.length - kept.length;
  }

  /** The document an entry points at. */
  document(entry: IndexEntry): RunRecord {
    const fd = this.open("r") as number;
    const buffer = Buffer.alloc(entry.length);
    readSync(fd, buffer, 0, entry.length, entry.offset);
    return JSON.parse(buffer.toString("utf8")) as RunRecord;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /**
   * Cuts off what a failed append wrote after the last line. (Should that fail too, later lines go after
   * the leftover, which the next open reads as one unreadable line: that run's own file is read instead.)
   */
  private cutBack(fd: number, offset: number): void {
    try {
      ftruncateSync(fd, offset);
    } catch {
      this.size = fstatSync(fd).size;
    }
  }

  /** The file, opened once: "r" for readers, "r+" for the owner once it exists, "a+" to create it. */
  private open(flags: "a+" | "r+" | "r"): number | undefined {
    if (this.fd !== undefined && (flags === "r" || this.writable)) return this.fd;
    let fd: number;
    try {
      fd = openSync(this.path, flags);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = fd;
    this.writable = flags !== "r";
    return fd;
  }

  private add(line: Buffer, offset: number): void {
    if (line.length === 0) return;
    let run: RunRecord;
    try {
      run = JSON.parse(line.toString("utf8")) as RunRecord;
    } catch {
      getLogger().warn(
        `ignoring an unreadable line of ${this.path} at byte ${offset}; the run's file is read instead`,
      );
      return;
    }
    if (typeof run?.runId === "string") this.remember(run, offset, line.length);
  }

  private remember(run: RunRecord, offset: number, length: number): IndexEntry {
    const entry: IndexEntry = {
      runId: run.runId,
      workflowName: run.workflowName,
      status: run.status,
      createdAt: run.createdAt,
      updatedAt: run.updatedAt,
      ...optional("idempotencyKey", run.idempotencyKey),
      ...optional("tags", run.tags),
      offset,
      length,
    };
    this.entries.set(run.runId, entry);
    return entry;
  }
}

/** The run id of an index line, or undefined for a line that cannot be read. */
function runIdOf(line: string): string | undefined {
  try {
    return (JSON.parse(line) as Partial<RunRecord>).runId;
  } catch {
    return undefined;
  }
}
