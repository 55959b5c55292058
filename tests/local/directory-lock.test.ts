import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type Child, spawnChild, until } from "./support/child.ts";

const contender = join(import.meta.dirname, "fixtures", "lock-contender.ts");
const inNewPidNamespace = ["unshare", "--pid", "--fork", "--mount-proc"];
/**
 * The contender in the background of a shell that then becomes `sleep`, which never reaps a child: once
 * killed, the contender stays a zombie. (Its standard input goes through fd 3: a background command of a
 * non-interactive shell would read /dev/null.)
 */
const withUnreapingParent = ["sh", "-c", 'exec 3<&0; "$@" <&3 3<&- & exec sleep 600', "sh"];

/** Field 3 of /proc/<pid>/stat (`S`, `R`, `Z` for a zombie), counted from the last `)` as the command may hold one. */
const processState = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
};

describe("the file backend's lock, across real processes", () => {
  const dirs: string[] = [];
  const children: Child[] = [];
  const newDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "tsw-lock-"));
    dirs.push(dir);
    return dir;
  };
  const start = (dir: string, options: Parameters<typeof spawnChild>[2] = {}) => {
    const child = spawnChild(contender, [dir], options);
    children.push(child);
    return child;
  };
  /** Sends `go` and waits for the answer to it (the contender's n-th won/locked message). */
  const attempt = async (child: Child, at = 0) => {
    const before = child.messages.filter((m) => m.event !== "ready").length;
    child.send(`go ${at}`);
    await until(() => child.messages.filter((m) => m.event !== "ready").length > before, "an answer");
    return child.messages.filter((m) => m.event !== "ready")[before] as {
      event: string;
      message?: string;
      runIds?: string[];
    };
  };

  afterEach(async () => {
    await Promise.all(children.splice(0).map((child) => child.kill()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("lets exactly one of three processes opening one directory at the same instant take it, so five keys make five runs", async () => {
    for (let round = 0; round < 5; round += 1) {
      // Prepare
      const dir = newDir();
      const three = [start(dir), start(dir), start(dir)];
      await Promise.all(three.map((child) => child.next((m) => m.event === "ready", "ready")));
      // Act
      const at = Date.now() + 300;
      const answers = await Promise.all(three.map((child) => attempt(child, at)));
      // Assess
      expect(answers.filter((answer) => answer.event === "won")).toHaveLength(1);
      expect(answers.filter((answer) => answer.event === "locked")).toHaveLength(2);
      expect(readdirSync(join(dir, "runs"))).toHaveLength(5);
      for (const child of three) child.send("exit");
      await Promise.all(three.map((child) => child.exited));
    }
  });

  it("refuses a process in another PID namespace while the holder lives, naming it, and lets one in once the holder's lease runs out", async () => {
    // Prepare: two containers sharing a volume, each process pid 1 in its own namespace.
    const dir = newDir();
    const env = { TSW_LOCK_STALE_MS: "1500" };
    const holder = start(dir, { command: inNewPidNamespace, env });
    const ready = await holder.next((m) => m.event === "ready", "the holder is ready");
    const held = await attempt(holder);
    expect(held.event).toBe("won");
    const other = start(dir, { command: inNewPidNamespace, env });
    const otherReady = await other.next((m) => m.event === "ready", "the other is ready");
    // Act
    const refused = await attempt(other);
    await holder.kill();
    let taken = await attempt(other);
    for (let tries = 0; taken.event !== "won" && tries < 200; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      taken = await attempt(other);
    }
    // Assess
    expect(ready.pid).toBe(otherReady.pid);
    expect(ready.namespace).not.toBe(otherReady.namespace);
    expect(refused.event).toBe("locked");
    expect(refused.message).toContain(`process ${String(ready.pid)}`);
    expect(refused.message).toContain(String(ready.namespace));
    expect(taken.event).toBe("won");
    expect(taken.runIds).toEqual(held.runIds);
    expect(readdirSync(join(dir, "runs"))).toHaveLength(5);
  });

  it("takes the directory at once from a killed holder in the same PID namespace, without waiting for its lease", async () => {
    // Prepare
    const dir = newDir();
    const holder = start(dir);
    await holder.next((m) => m.event === "ready", "the holder is ready");
    const held = await attempt(holder);
    expect(held.event).toBe("won");
    const next = start(dir);
    await next.next((m) => m.event === "ready", "the next process is ready");
    // Act
    await holder.kill();
    const taken = await attempt(next);
    // Assess: the lease (10 s) has not run out, but the holder's pid is gone in this namespace.
    expect(taken.event).toBe("won");
    expect(taken.runIds).toEqual(held.runIds);
  });

  it("takes the directory at once from a killed holder that its parent has not reaped (a zombie)", async () => {
    // Prepare
    const dir = newDir();
    const holder = start(dir, { command: withUnreapingParent });
    const ready = await holder.next((m) => m.event === "ready", "the holder is ready");
    const held = await attempt(holder);
    expect(held.event).toBe("won");
    const next = start(dir);
    await next.next((m) => m.event === "ready", "the next process is ready");
    const pid = ready.pid as number;
    // Act
    process.kill(pid, "SIGKILL");
    await until(() => processState(pid) === "Z", "the killed holder is a zombie");
    const taken = await attempt(next);
    // Assess: its pid still answers kill(pid, 0) and its start time is unchanged, but it is a zombie.
    expect(processState(pid)).toBe("Z");
    expect(taken.event).toBe("won");
    expect(taken.runIds).toEqual(held.runIds);
  });
});
