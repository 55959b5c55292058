import { randomUUID } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** Who holds a directory: enough to name it in an error and to tell whether it is still there. */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** `/proc/self/ns/pid` of the holder ("" where there is none): pids are only comparable within one. */
  pidNamespace: string;
  /** The kernel's boot id ("" where there is none): a pid from before a reboot means nothing. */
  bootId: string;
  /** When the holder's process started (`/proc/<pid>/stat`), so that a reused pid is not taken for it. */
  processStart: string;
  /** When it took the lock (ISO 8601). */
  since: string;
}

/** Options of {@link DirectoryLock.acquire}. */
export interface DirectoryLockOptions {
  /** A holder that has not refreshed its lock for this long is gone. @default 10000 */
  staleMs?: number;
  /** Called once if another process took the lock over (this one stopped refreshing it for `staleMs`). */
  onLost?: (holder: LockHolder | undefined) => void;
}

/** Why a lock could not be taken: the live holder (undefined when it could not be read). */
export class LockHeldError extends Error {
  constructor(readonly holder: LockHolder | undefined) {
    super("the directory is locked");
  }
}

const DEFAULT_STALE_MS = 10_000;
const GENERATION = /^\d{1,15}$/;

/**
 * One writing process per directory, across processes, PID namespaces (containers sharing a volume)
 * and machines sharing a local file system.
 *
 * The lock is a series of files `lock/<n>`. Taking it creates the next generation `lock/<n+1>` with
 * `link()`, which fails if the file exists: of processes racing for one generation exactly one wins,
 * and the generation after a live holder's is never created. The holder refreshes its file's mtime
 * (a lease) every `staleMs / 5`; a generation is free when its mtime is older than `staleMs`, when it
 * was released (mtime set to 0), or, faster, when its holder shares this process's PID namespace and
 * boot and its process is gone (also a zombie: killed, and not yet reaped by its parent). A holder that
 * finds a newer generation has lost the lock and says so.
 *
 * Lower generations are only ever removed by the holder of a higher one, so no process can delete a
 * lock that another has just taken (the flaw of removing a stale lock file and creating it again, as
 * in proper-lockfile#121 and npm/lockfile#4).
 */
export class DirectoryLock {
  private heartbeat: NodeJS.Timeout | undefined;
  private released = false;

  private constructor(
    private readonly lockDir: string,
    private readonly generation: number,
    readonly holder: LockHolder,
    private readonly staleMs: number,
    private readonly onLost: ((holder: LockHolder | undefined) => void) | undefined,
  ) {}

  /**
   * Takes the lock of `dir`, or throws {@link LockHeldError} naming the live holder.
   */
  static acquire(dir: string, options: DirectoryLockOptions = {}): DirectoryLock {
    const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
    const lockDir = join(dir, "lock");
    mkdirSync(lockDir, { recursive: true });
    const holder = ownHolder();
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const generations = listGenerations(lockDir);
      const top = generations[generations.length - 1] ?? 0;
      if (top > 0) {
        const state = inspect(lockDir, top, staleMs);
        if (state.live) throw new LockHeldError(state.holder);
      }
      const next = top + 1;
      if (!createExclusive(lockDir, next, holder)) continue;
      // A process that judged an older generation free just before may have created a higher one: the
      // highest generation wins, and the others step back.
      if (listGenerations(lockDir).some((generation) => generation > next)) {
        removeQuietly(join(lockDir, String(next)));
        continue;
      }
      for (const older of generations) removeQuietly(join(lockDir, String(older)));
      const lock = new DirectoryLock(lockDir, next, holder, staleMs, options.onLost);
      lock.startHeartbeat();
      return lock;
    }
    throw new LockHeldError(liveLock(dir, { staleMs })?.holder);
  }

  /** Lets go: the next process takes the directory at once. */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    try {
      if (!this.isLost()) utimesSync(this.path, 0, 0);
    } catch {
      // Gone already: nothing to let go of.
    }
  }

  private get path(): string {
    return join(this.lockDir, String(this.generation));
  }

  private isLost(): boolean {
    return listGenerations(this.lockDir).some((generation) => generation > this.generation);
  }

  private startHeartbeat(): void {
    this.heartbeat = setInterval(() => this.refresh(), Math.max(50, Math.floor(this.staleMs / 5)));
    this.heartbeat.unref();
  }

  private refresh(): void {
    if (this.released) return;
    let lost = false;
    try {
      statSync(this.path);
      lost = this.isLost();
      if (!lost) {
        const now = new Date();
        utimesSync(this.path, now, now);
      }
    } catch {
      lost = true;
    }
    if (!lost) return;
    this.released = true;
    clearInterval(this.heartbeat);
    const generations = listGenerations(this.lockDir);
    const top = generations[generations.length - 1];
    this.onLost?.(top === undefined ? undefined : readHolder(this.lockDir, top));
  }
}

/**
 * The lock a process holds on `dir` now, with that process (undefined when its lock file cannot be read:
 * the lock is live until its lease runs out all the same), or undefined when none does (never locked,
 * released, or its holder is gone). Readers use it to know whether an app is there to pick up their requests.
 */
export function liveLock(
  dir: string,
  options: { staleMs?: number } = {},
): { holder: LockHolder | undefined } | undefined {
  const lockDir = join(dir, "lock");
  const generations = listGenerations(lockDir);
  const top = generations[generations.length - 1];
  if (top === undefined) return undefined;
  const state = inspect(lockDir, top, options.staleMs ?? DEFAULT_STALE_MS);
  return state.live ? { holder: state.holder } : undefined;
}

/** How a holder reads in a message: `process 4242 on host-a (since 2026-01-02T03:04:05.000Z)`. */
export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return "another process";
  const here = holder.hostname === hostname() && holder.pidNamespace === ownHolder().pidNamespace;
  return `process ${holder.pid}${here ? "" : ` on ${holder.hostname}${holder.pidNamespace ? ` (PID namespace ${holder.pidNamespace})` : ""}`} (since ${holder.since})`;
}

function listGenerations(lockDir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(lockDir);
  } catch {
    return [];
  }
  return names
    .filter((name) => GENERATION.test(name))
    .map(Number)
    .sort((a, b) => a - b);
}

function inspect(
  lockDir: string,
  generation: number,
  staleMs: number,
): { live: boolean; holder: LockHolder | undefined } {
  const path = join(lockDir, String(generation));
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return { live: false, holder: undefined };
  }
  const holder = readHolder(lockDir, generation);
  if (Date.now() - mtimeMs > staleMs) return { live: false, holder };
  if (holder && isGone(holder)) return { live: false, holder };
  return { live: true, holder };
}

function readHolder(lockDir: string, generation: number): LockHolder | undefined {
  try {
    const value = JSON.parse(readFileSync(join(lockDir, String(generation)), "utf8")) as LockHolder;
    return typeof value.pid === "number" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the holder to a temporary file and links it as the generation: all or nothing, never two. */
function createExclusive(lockDir: string, generation: number, holder: LockHolder): boolean {
  const temporary = join(lockDir, `.${randomUUID()}`);
  const fd = openSync(temporary, "wx");
  try {
    // All of it: a short write would leave a holder that no process can read (nor tell gone before its lease ends).
    const content = Buffer.from(JSON.stringify(holder));
    for (let written = 0; written < content.length; ) written += writeSync(fd, content, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, join(lockDir, String(generation)));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    removeQuietly(temporary);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}

let own: LockHolder | undefined;

function ownHolder(): LockHolder {
  own ??= {
    pid: process.pid,
    hostname: hostname(),
    pidNamespace: readOr(() => readlinkSync("/proc/self/ns/pid"), ""),
    bootId: readOr(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(), ""),
    processStart: processStat(process.pid)?.start ?? "",
    since: "",
  };
  return { ...own, since: new Date().toISOString() };
}

/**
 * True only when the holder shares this process's PID namespace and boot (so its pid means the same
 * here) and no process with its pid and start time runs (a zombie does not): in another namespace or
 * on another machine, only the lease can tell.
 */
function isGone(holder: LockHolder): boolean {
  const me = ownHolder();
  if (
    holder.hostname !== me.hostname ||
    holder.pidNamespace !== me.pidNamespace ||
    holder.bootId !== me.bootId
  )
    return false;
  if (holder.pid === process.pid) return holder.processStart !== me.processStart;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return true;
  }
  const stat = processStat(holder.pid);
  if (stat === undefined) return false;
  // A killed process that its parent has not reaped yet (a zombie) still answers kill(pid, 0).
  if (stat.state === "Z" || stat.state === "X") return true;
  return stat.start !== undefined && holder.processStart !== "" && stat.start !== holder.processStart;
}

/**
 * Fields 3 (the state: `R`, `S`, `Z` for a zombie…) and 22 (when the process started, in clock ticks
 * since boot) of /proc/<pid>/stat. They are counted from the last `)`: field 2, the command name in
 * parentheses, may itself hold spaces and parentheses.
 */
function processStat(pid: number): { state: string; start: string | undefined } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", start: fields[19] };
  } catch {
    return undefined;
  }
}

function readOr(read: () => string, fallback: string): string {
  try {
    return read();
  } catch {
    return fallback;
  }
}
