/**
 * The file backend when the disk fills up, when an index line is lost, and when a run file is damaged in
 * the middle: no run file keeps a partial commit, no idempotency key is given to a second run, and a run
 * that cannot be read says so. A full disk is simulated at the file system boundary the storage uses:
 * `node:fs`'s `writeSync` writes part of the bytes and then fails with ENOSPC, as on a real full disk.
 */
import fs, {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  configureLogging,
  FatalError,
  RunFileDamagedError,
  type RunRecord,
  StorageLockedError,
  StorageWriteError,
  sleep,
  step,
  workflow,
} from "tsworkflow";
import { FileStorage, LocalRuntime } from "tsworkflow/local";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { getLogger } from "../../lib/core/logger.ts";
import type { NewRun } from "../../lib/ports/event-store.ts";
import { newRunFixture } from "../contract/event-store-contract.ts";

let dir: string;
const opened: (FileStorage | LocalRuntime)[] = [];
/** Executions of each step function, by label. */
const executions = new Map<string, number>();

const ran = (label: string) => executions.set(label, (executions.get(label) ?? 0) + 1);
const runFile = (runId: string) => join(dir, "runs", `${runId}.jsonl`);

const open = () => {
  const storage = new FileStorage({ dir });
  opened.push(storage);
  return storage;
};

const runtimeOn = (storage: FileStorage) => {
  const runtime = new LocalRuntime({ storage });
  opened.push(runtime);
  return runtime;
};

/**
 * The disk as the storage sees it through `node:fs`: the files whose path `isFull` accepts have `room`
 * bytes left. A string longer than that is written in part (as `write(2)` does); a write with no room
 * left fails with ENOSPC.
 */
const disk = {
  isFull: (_path: string) => false,
  room: 0,
  /** Writes that failed with ENOSPC, and writes that stopped part-way. */
  refused: 0,
  partial: 0,
};

const realWriteSync = fs.writeSync;

function fullDiskWriteSync(fd: number, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]): number {
  const write = realWriteSync as (...args: unknown[]) => number;
  if (!disk.isFull(readlinkSync(`/proc/self/fd/${fd}`))) return write(fd, data, ...rest);
  if (disk.room > 0 && typeof data === "string") {
    const part = data.slice(0, disk.room);
    disk.room -= part.length;
    if (part.length < data.length) disk.partial += 1;
    return write(fd, part);
  }
  disk.refused += 1;
  throw Object.assign(new Error("ENOSPC: no space left on device, write"), {
    errno: -28,
    code: "ENOSPC",
    syscall: "write",
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tsw-file-faults-"));
  configureLogging({ level: "silent" });
  executions.clear();
  Object.assign(disk, { isFull: () => false, room: 0, refused: 0, partial: 0 });
  // Every `writeSync` of the storage goes through the fake disk (the named imports of node:fs included).
  vi.spyOn(fs, "writeSync").mockImplementation(fullDiskWriteSync as typeof fs.writeSync);
  syncBuiltinESMExports();
});

afterEach(async () => {
  for (const closable of opened.splice(0).reverse()) await closable.close();
  vi.restoreAllMocks();
  syncBuiltinESMExports();
  configureLogging();
  rmSync(dir, { recursive: true, force: true });
});

const bulky = step("ff_bulky", async (label: string) => {
  ran(`bulky ${label}`);
  return "x".repeat(20_000);
});
/** Fills the disk up as it returns, but for 5,000 bytes: the commit of the bulky result fails part-way. */
const fillsDisk = step("ff_fills_disk", async (label: string) => {
  ran(`fills ${label}`);
  disk.room = 5_000;
  disk.isFull = (path) => path.endsWith(".jsonl");
  return "y".repeat(20_000);
});
const charge = step("ff_charge", async (label: string) => {
  ran(`charge ${label}`);
  return `charged ${label}`;
});
const order = workflow("ff_order", async (label: string) => {
  await bulky(label);
  await fillsDisk(label);
  return charge(label);
});
const quick = workflow("ff_quick", async (label: string) => charge(label));
/** Fails its first attempt for good: a run to retry. */
const declinedOnce = step("ff_declined_once", async (label: string) => {
  ran(`declined ${label}`);
  if (executions.get(`declined ${label}`) === 1) throw new FatalError("card declined");
  return label;
});
const fragile = workflow("ff_fragile", async (label: string) => declinedOnce(label));
const napping = workflow("ff_napping", async (label: string) => {
  await charge(label);
  await sleep("1h");
  return label;
});

/** Every line of a run file, parsed: throws if one is not JSON. */
const commitsOf = (runId: string) =>
  readFileSync(runFile(runId), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { v: number });

describe("FileStorage on a full disk", () => {
  it("cuts off what a commit interrupted by a full disk wrote, and the run completes once there is room, each step run once", async () => {
    // Prepare
    const storage = open();
    const runtime = runtimeOn(storage);
    // Act: the commit after ff_fills_disk fails part-way; room comes back 100 ms later.
    const { runId } = await runtime.start(order, ["o1"], { idempotencyKey: "order-o1" });
    await vi.waitFor(() => expect(disk.refused).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    disk.isFull = () => false;
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    await runtime.close();
    // Assess: every line of the file is a whole commit, and a new process reads the run and keeps its key.
    expect(disk.partial).toBeGreaterThan(0);
    expect(run.status).toBe("completed");
    expect(run.result).toBe("charged o1");
    const versions = commitsOf(runId).map((commit) => commit.v);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    const reopened = open();
    expect(reopened.corrupt.size).toBe(0);
    expect((await reopened.getRun(runId))?.status).toBe("completed");
    const again = await runtimeOn(reopened).start(order, ["o1"], { idempotencyKey: "order-o1" });
    expect(again.runId).toBe(runId);
    expect(Object.fromEntries(executions)).toEqual({ "bulky o1": 1, "fills o1": 1, "charge o1": 1 });
  });

  it("refuses a start with StorageWriteError saying the disk is full, and leaves no file behind", async () => {
    // Prepare
    const storage = open();
    const runtime = runtimeOn(storage);
    disk.isFull = (path) => path.endsWith(".jsonl");
    // Act
    const start = runtime.start(quick, ["q1"], { idempotencyKey: "quick-q1" });
    // Assess
    const error = (await start.catch((thrown: unknown) => thrown)) as StorageWriteError;
    expect(error).toBeInstanceOf(StorageWriteError);
    expect(error.code).toBe("STORAGE_WRITE_FAILED");
    expect(error.reason).toBe("ENOSPC");
    expect(error.message).toContain("the disk is full (ENOSPC): free space on it");
    expect(error.message).toContain("The run was not created.");
    expect(fs.readdirSync(join(dir, "runs"))).toEqual([]);
    disk.isFull = () => false;
    const { runId } = await runtime.start(quick, ["q1"], { idempotencyKey: "quick-q1" });
    expect((await runtime.waitForRun(runId)).status).toBe("completed");
  });

  it("throws StorageWriteError when the directory cannot be opened on a full disk, not a raw ENOSPC", () => {
    // Prepare
    disk.isFull = () => true;
    // Act
    const opening = () => open();
    // Assess
    expect(opening).toThrow(StorageWriteError);
    expect(opening).toThrow(`Cannot write ${dir}: the disk is full (ENOSPC)`);
    expect(opening).toThrow("Nothing was started; start again once the directory can be written");
  });

  it.each([
    ["exists there without runs/", (parent: string) => parent],
    [
      "is missing there, below a directory that exists",
      (parent: string) => join(parent, "app", ".tsworkflow"),
    ],
  ])(
    "names a read-only file system when the directory %s, not the ENOENT that Node's recursive mkdir answers",
    (_, where) => {
      // Prepare: mkdir as on a read-only mount (the tests may not mount one): recursive, Node answers ENOENT;
      // the first missing directory alone, EROFS.
      const target = where(dir);
      const realMkdirSync = fs.mkdirSync;
      vi.spyOn(fs, "mkdirSync").mockImplementation(((
        path: fs.PathLike,
        options?: fs.MakeDirectoryOptions,
      ) => {
        if (!String(path).startsWith(dir)) return realMkdirSync(path, options);
        const [code, syscall] = options?.recursive ? ["ENOENT", "mkdir"] : ["EROFS", "mkdir"];
        throw Object.assign(new Error(`${code}: mkdir '${String(path)}'`), { code, syscall });
      }) as typeof fs.mkdirSync);
      syncBuiltinESMExports();
      // Act
      const opening = () => opened.push(new FileStorage({ dir: target }));
      // Assess
      expect(opening).toThrow(
        `Cannot write ${target}: the file system is read-only (EROFS): mount it read-write.`,
      );
      expect(opening).toThrow("or use another one (configure({ dir }), TSWORKFLOW_DIR)");
      expect(opening).toThrow(`new FileStorage({ dir: ${JSON.stringify(target)}, readOnly: true })`);
    },
  );

  it("keeps a run whose index line the full disk refused, without ending the process, and lists it with its key from its file at the next open", async () => {
    // Prepare: the index refuses its line; the run file takes the run's last commit.
    const storage = open();
    const runtime = runtimeOn(storage);
    disk.isFull = (path) => path.endsWith("finished.jsonl");
    // Act
    const { runId } = await runtime.start(quick, ["i1"], {
      idempotencyKey: "quick-i1",
      tags: { shop: "s1" },
    });
    const run = await runtime.waitForRun(runId);
    await vi.waitFor(() => expect(disk.refused).toBeGreaterThan(0), { timeout: 5_000, interval: 5 });
    const listed = await storage.listRuns({ tags: { shop: "s1" } });
    await runtime.close();
    disk.isFull = () => false;
    const reopened = open();
    const again = await runtimeOn(reopened).start(quick, ["i1"], { idempotencyKey: "quick-i1" });
    // Assess
    expect(run.status).toBe("completed");
    expect(listed.runs.map((listedRun: RunRecord) => listedRun.runId)).toEqual([runId]);
    expect(again.runId).toBe(runId);
    expect((await reopened.listRuns({ tags: { shop: "s1" } })).runs.map((r) => r.runId)).toEqual([runId]);
    expect(executions.get("charge i1")).toBe(1);
  });

  it("refuses the retry of a failed run while the index cannot take its line, writing nothing to the run's file, and retries it once there is room", async () => {
    // Prepare: a failed run, listed in the index.
    const storage = open();
    const runtime = runtimeOn(storage);
    const { runId } = await runtime.start(fragile, ["f1"]);
    expect((await runtime.waitForRun(runId)).status).toBe("failed");
    const before = readFileSync(runFile(runId), "utf8");
    disk.isFull = (path) => path.endsWith("finished.jsonl");
    // Act: the index says a retried run goes on before its file does; here it cannot.
    const retry = runtime.retryRun(runId);
    // Assess
    await expect(retry).rejects.toThrow(StorageWriteError);
    expect(readFileSync(runFile(runId), "utf8")).toBe(before);
    await runtime.close();
    disk.isFull = () => false;
    const reopened = open();
    const restarted = runtimeOn(reopened);
    expect((await reopened.getRun(runId))?.status).toBe("failed");
    await restarted.retryRun(runId);
    expect((await restarted.waitForRun(runId)).status).toBe("completed");
    expect(executions.get("declined f1")).toBe(2);
  });
});

describe("FileStorage with a lost index line", () => {
  it("gives the idempotency key and tags of a finished run missing from finished.jsonl back to that run", async () => {
    // Prepare: a finished run whose index line a power loss took (the run file was synced first).
    const first = open();
    const runtime = runtimeOn(first);
    const { runId } = await runtime.start(quick, ["k7"], { idempotencyKey: "order-7", tags: { shop: "s7" } });
    await runtime.waitForRun(runId);
    await runtime.close();
    await first.close();
    writeFileSync(join(dir, "finished.jsonl"), "");
    // Act
    const second = open();
    const again = await runtimeOn(second).start(quick, ["k7"], { idempotencyKey: "order-7" });
    // Assess
    expect(again.runId).toBe(runId);
    expect(executions.get("charge k7")).toBe(1);
    expect((await second.listRuns({ tags: { shop: "s7" } })).runs.map((run) => run.runId)).toEqual([runId]);
    expect(readFileSync(join(dir, "finished.jsonl"), "utf8")).toContain(`"runId":"${runId}"`);
  });
});

describe("FileStorage with a run file damaged in the middle", () => {
  /** Overwrites 20 bytes in the middle of line `line` (1-based) of the run's file. */
  const damage = (runId: string, line: number) => {
    const lines = readFileSync(runFile(runId), "utf8").split("\n");
    const text = lines[line - 1] as string;
    const middle = Math.floor(text.length / 2);
    lines[line - 1] = `${text.slice(0, middle)}${"\u0000".repeat(20)}${text.slice(middle + 20)}`;
    writeFileSync(runFile(runId), lines.join("\n"));
  };

  it("keeps the key of a damaged run taken, names the file and the repair when asked for the run, and lets the other runs go on", async () => {
    // Prepare: A finished, B asleep, C finished; A's and B's files damaged in their second line.
    const first = open();
    const runtime = runtimeOn(first);
    const ids: Record<string, string> = {};
    for (const [label, flow] of [
      ["A", quick],
      ["B", napping],
      ["C", quick],
    ] as const)
      ids[label] = (await runtime.start(flow, [label], { idempotencyKey: `order-${label}` })).runId;
    for (const label of ["A", "C"]) await runtime.waitForRun(ids[label] as string);
    await vi.waitFor(async () => expect((await first.getRun(ids.B as string))?.status).toBe("suspended"));
    await runtime.close();
    await first.close();
    damage(ids.A as string, 2);
    damage(ids.B as string, 2);
    // Act
    const second = open();
    const restarted = runtimeOn(second);
    const starts = await Promise.all(
      ["A", "B"].map((label) =>
        restarted
          .start(quick, [label], { idempotencyKey: `order-${label}` })
          .catch((error: unknown) => error),
      ),
    );
    const other = await restarted.start(quick, ["C"], { idempotencyKey: "order-C" });
    // Assess: no second run for A or B, each refusal naming the damaged file and how to repair it.
    for (const [index, label] of ["A", "B"].entries()) {
      const error = starts[index] as RunFileDamagedError;
      const runId = ids[label] as string;
      expect(error).toBeInstanceOf(RunFileDamagedError);
      expect(error.code).toBe("RUN_FILE_DAMAGED");
      expect(error.runId).toBe(runId);
      expect(error.message).toContain(`Run ${runId} exists but its file ${runFile(runId)} is damaged`);
      expect(error.message).toContain("Line 2 of the log");
      expect(error.message).toContain("keep only its lines before line 2 (head -n 1)");
      await expect(second.getRun(runId)).rejects.toThrow(RunFileDamagedError);
      await expect(second.getEvents(runId)).rejects.toThrow(RunFileDamagedError);
    }
    expect(other.runId).toBe(ids.C);
    expect(Object.fromEntries(executions)).toEqual({ "charge A": 1, "charge B": 1, "charge C": 1 });
    expect(fs.readdirSync(join(dir, "runs"))).toHaveLength(3);
  });

  it("says a run's file is damaged once when the run is read (in the error, not in the log too), and logs it when a listing leaves the run out", async () => {
    // Prepare: A finished, B asleep; both files damaged in their second line; a reader, as the CLI opens one.
    const first = open();
    const runtime = runtimeOn(first);
    const a = (await runtime.start(quick, ["A"])).runId;
    const b = (await runtime.start(napping, ["B"])).runId;
    await runtime.waitForRun(a);
    await vi.waitFor(async () => expect((await first.getRun(b))?.status).toBe("suspended"));
    await runtime.close();
    await first.close();
    damage(a, 2);
    damage(b, 2);
    const reader = new FileStorage({ dir, readOnly: true });
    opened.push(reader);
    const errors = vi.spyOn(getLogger(), "error");
    // Act and assess: a read of each throws the error, logging nothing.
    await expect(reader.getRun(a)).rejects.toThrow(RunFileDamagedError);
    await expect(reader.getEvents(b)).rejects.toThrow(RunFileDamagedError);
    expect(errors).not.toHaveBeenCalled();
    // A listing that leaves B out says why in the log.
    writeFileSync(runFile(b), `${readFileSync(runFile(b), "utf8")}\n`);
    const listed = await reader.listRuns();
    expect(listed.runs.map((run) => run.runId)).not.toContain(b);
    expect(errors).toHaveBeenCalledWith(expect.stringContaining(`Run ${b} exists but its file`), {
      runId: b,
    });
  });

  it("goes on with a run repaired as the error says: cut before the damaged line, its index lines removed", async () => {
    // Prepare: a finished run damaged in its last line but one.
    const first = open();
    const runtime = runtimeOn(first);
    const { runId } = await runtime.start(quick, ["R"], { idempotencyKey: "order-R" });
    await runtime.waitForRun(runId);
    await runtime.close();
    await first.close();
    const lines = readFileSync(runFile(runId), "utf8").split("\n").filter(Boolean);
    damage(runId, lines.length - 1);
    const damaged = open();
    const error = (await damaged.getRun(runId).catch((thrown: unknown) => thrown)) as RunFileDamagedError;
    await damaged.close();
    const keep = Number(/head -n (\d+)/.exec(error.message)?.[1]);
    // Act: the repair the message names.
    writeFileSync(runFile(runId), `${lines.slice(0, keep).join("\n")}\n`);
    const index = readFileSync(join(dir, "finished.jsonl"), "utf8").split("\n");
    writeFileSync(
      join(dir, "finished.jsonl"),
      index.filter((line) => !line.includes(`"runId":"${runId}"`)).join("\n"),
    );
    const repaired = open();
    const restarted = runtimeOn(repaired);
    const run = await restarted.waitForRun(runId, { timeoutMs: 10_000 });
    // Assess: the run completes again from the kept lines; its key still gives it back.
    expect(keep).toBe(lines.length - 2);
    expect(run.status).toBe("completed");
    expect(repaired.corrupt.size).toBe(0);
    const again = await restarted.start(quick, ["R"], { idempotencyKey: "order-R" });
    expect(again.runId).toBe(runId);
  });
});

describe("FileStorage.repairRun", () => {
  /** Overwrites line `line` (1-based) of the run's file with bytes that are no JSON. */
  const garble = (runId: string, line: number) => {
    const lines = readFileSync(runFile(runId), "utf8").split("\n");
    lines[line - 1] = "\u0000".repeat(20);
    writeFileSync(runFile(runId), lines.join("\n"));
  };
  /** A finished run of `quick`, with key `order-<label>`, the storage closed; its file's lines. */
  const finishedRun = async (label: string) => {
    const storage = open();
    const runtime = runtimeOn(storage);
    const { runId } = await runtime.start(quick, [label], { idempotencyKey: `order-${label}` });
    await runtime.waitForRun(runId);
    await runtime.close();
    await storage.close();
    return { runId, lines: readFileSync(runFile(runId), "utf8") };
  };

  it("cuts the file before its damaged line with a copy kept, takes the run out of finished.jsonl, and the run completes again from there", async () => {
    // Prepare: a finished run damaged in its last line but one.
    const { runId, lines } = await finishedRun("R");
    const count = lines.split("\n").filter(Boolean).length;
    garble(runId, count - 1);
    const damaged = readFileSync(runFile(runId), "utf8");
    const storage = open();
    // Act
    const repair = await storage.repairRun(runId);
    // Assess: what it says it did, on disk.
    expect(repair).toEqual({
      runId,
      damagedLine: count - 1,
      keptLines: count - 2,
      cutLines: 2,
      copy: expect.stringMatching(new RegExp(`^${dir}/damaged/${runId}\\..+\\.jsonl$`)),
      status: "pending",
    });
    expect(readFileSync(repair?.copy as string, "utf8")).toBe(damaged);
    expect(readFileSync(runFile(runId), "utf8")).toBe(
      `${lines
        .split("\n")
        .slice(0, count - 2)
        .join("\n")}\n`,
    );
    expect(readFileSync(join(dir, "finished.jsonl"), "utf8")).not.toContain(runId);
    expect(fs.readdirSync(join(dir, "runs"))).toEqual([`${runId}.jsonl`]);
    expect(await storage.getRun(runId)).toMatchObject({ status: "pending" });
    // The run goes on where a runtime recovers it, in the same storage; its key still gives it back.
    const runtime = runtimeOn(storage);
    expect((await runtime.waitForRun(runId, { timeoutMs: 10_000 })).status).toBe("completed");
    expect((await runtime.start(quick, ["R"], { idempotencyKey: "order-R" })).runId).toBe(runId);
  });

  it("counts an emptied line as the damaged one, as reading the file does", async () => {
    // Prepare
    const { runId, lines } = await finishedRun("E");
    const count = lines.split("\n").filter(Boolean).length;
    const emptied = lines.split("\n");
    emptied[1] = "";
    writeFileSync(runFile(runId), emptied.join("\n"));
    const storage = open();
    // Act
    const repair = await storage.repairRun(runId);
    // Assess
    expect(repair).toMatchObject({ damagedLine: 2, keptLines: 1, cutLines: count - 1 });
    expect(readFileSync(runFile(runId), "utf8")).toBe(`${lines.split("\n")[0]}\n`);
  });

  it("moves a file whose first line is damaged away, freeing the run's idempotency key", async () => {
    // Prepare
    const { runId } = await finishedRun("F");
    garble(runId, 1);
    const storage = open();
    // Act
    const repair = await storage.repairRun(runId);
    // Assess
    expect(repair).toMatchObject({ runId, damagedLine: 1, keptLines: 0 });
    expect(repair).not.toHaveProperty("status");
    expect(fs.existsSync(runFile(runId))).toBe(false);
    expect(fs.existsSync(repair?.copy as string)).toBe(true);
    expect(await storage.getRun(runId)).toBeUndefined();
    const again = await runtimeOn(storage).start(quick, ["F"], { idempotencyKey: "order-F" });
    expect(again.runId).not.toBe(runId);
  });

  it("does nothing to a file that is not damaged, refuses a run with no file, and repairs nothing read-only", async () => {
    // Prepare
    const { runId, lines } = await finishedRun("N");
    const reader = new FileStorage({ dir, readOnly: true });
    opened.push(reader);
    // Act and assess
    await expect(reader.repairRun(runId)).rejects.toThrow(StorageLockedError);
    const storage = open();
    expect(await storage.repairRun(runId)).toBeUndefined();
    expect(readFileSync(runFile(runId), "utf8")).toBe(lines);
    expect(fs.existsSync(join(dir, "damaged"))).toBe(false);
    await expect(storage.repairRun("run_00mxcz1k2a_4e1f0b9c7d2a")).rejects.toThrow(
      'No run with id "run_00mxcz1k2a_4e1f0b9c7d2a"',
    );
  });
});

describe("FileStorage with more run files than it keeps open", () => {
  /** fdatasync as the storage calls it, failing with EIO for the files whose path is in `failing`. */
  const failing = new Set<string>();
  const realFdatasync = fs.fdatasync;
  function failingFdatasync(fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void {
    if (!failing.has(readlinkSync(`/proc/self/fd/${fd}`))) {
      realFdatasync(fd, callback);
      return;
    }
    callback(
      Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", errno: -5, syscall: "fdatasync" }),
    );
  }

  beforeEach(() => {
    failing.clear();
    vi.spyOn(fs, "fdatasync").mockImplementation(failingFdatasync as typeof fs.fdatasync);
    syncBuiltinESMExports();
  });

  it("logs a failed sync of the file it closes to keep 512 open and accepts no further commits, rather than leaving the rejection unhandled", async () => {
    // Prepare: 512 run files open, the first the least recently used; its next sync fails.
    const storage = open();
    const errors = vi.spyOn(getLogger(), "error");
    const [oldest, ...others] = Array.from({ length: 513 }, () => newRunFixture());
    await storage.createRun(oldest as NewRun);
    await Promise.all(others.slice(0, 511).map((fixture) => storage.createRun(fixture)));
    const last = others[511] as NewRun;
    const oldestFile = runFile(oldest?.run.runId as string);
    failing.add(oldestFile);
    // Act: the 513th file opened closes the first after its next sync.
    await storage.createRun(last);
    // Assess
    await expect(storage.getRun(last.run.runId)).rejects.toThrow("EIO: i/o error, fdatasync");
    await expect(
      storage.commit(last.run.runId, 1, [], { status: "running", updatedAt: new Date().toISOString() }),
    ).rejects.toThrow("EIO: i/o error, fdatasync");
    expect(errors).toHaveBeenCalledWith(
      `fdatasync of ${oldestFile} failed; no further commits are accepted: EIO: i/o error, fdatasync`,
    );
  });
});

describe("FileStorage's lock file", () => {
  const lockFile = (generation: number) => join(dir, "lock", String(generation));
  const openWith = (options: ConstructorParameters<typeof FileStorage>[0]) => {
    const storage = new FileStorage({ dir, ...options });
    opened.push(storage);
    return storage;
  };

  it("holds the whole holder when the file system takes a few bytes per write, so that a reader names the holding process", () => {
    // Prepare: the temporary files the lock is written to take at most 16 bytes per write.
    vi.spyOn(fs, "writeSync").mockImplementation(((
      fd: number,
      data: string | NodeJS.ArrayBufferView,
      offset?: number,
    ) => {
      if (!readlinkSync(`/proc/self/fd/${fd}`).startsWith(join(dir, "lock", ".")))
        return (realWriteSync as (...args: unknown[]) => number)(fd, data, offset);
      const bytes =
        typeof data === "string"
          ? Buffer.from(data)
          : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const from = typeof data === "string" ? 0 : (offset ?? 0);
      return realWriteSync(fd, bytes.subarray(from, from + 16));
    }) as typeof fs.writeSync);
    syncBuiltinESMExports();
    // Act
    open();
    // Assess
    expect(JSON.parse(readFileSync(lockFile(1), "utf8"))).toMatchObject({ pid: process.pid });
    expect(openWith({ readOnly: true }).holder()).toBe(
      `process ${process.pid} (since ${JSON.parse(readFileSync(lockFile(1), "utf8")).since})`,
    );
  });

  it("counts a lock file that cannot be read as held until its lease runs out: a writer is refused, a reader sees the directory held, and it is taken over after", () => {
    // Prepare: a holder's lock file cut short (a disk error, an edit by hand), refreshed just now.
    mkdirSync(join(dir, "lock"), { recursive: true });
    writeFileSync(lockFile(1), '{"pid":4242,"hostn');
    // Act
    const refused = (() => {
      try {
        openWith({ lockStaleMs: 60_000 });
      } catch (error) {
        return error;
      }
    })();
    const seen = openWith({ readOnly: true, lockStaleMs: 60_000 }).holder();
    utimesSync(lockFile(1), new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    const taken = openWith({ lockStaleMs: 60_000 });
    // Assess
    expect(refused).toBeInstanceOf(StorageLockedError);
    expect((refused as StorageLockedError).holder).toBe("another process");
    expect(seen).toBe("another process");
    expect(taken.holder()).toContain(`process ${process.pid}`);
    expect(JSON.parse(readFileSync(lockFile(2), "utf8"))).toMatchObject({ pid: process.pid });
  });
});
