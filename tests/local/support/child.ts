import { type ChildProcess, spawn } from "node:child_process";

/** A child process that prints one JSON object per line on standard output. */
export interface Child {
  process: ChildProcess;
  /** Every JSON line printed so far. */
  messages: Record<string, unknown>[];
  /** Resolves with the first message (already printed or to come) that `matches`. */
  next(
    matches: (message: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Writes a line to its standard input. */
  send(line: string): void;
  /** Resolves once it has exited, with its code or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  /** SIGKILL (the whole process group when started with `group`), then waits for the exit. */
  kill(): Promise<void>;
}

/**
 * Starts `node --import tsx <file> ...args` (not node_modules/.bin/tsx, whose own child would outlive a
 * SIGKILL). With `command`, runs that command line in front of node (e.g. `unshare -p -f --mount-proc`).
 */
export function spawnChild(
  file: string,
  args: string[],
  options: { command?: string[]; env?: Record<string, string> } = {},
): Child {
  const line = [...(options.command ?? []), process.execPath, "--import", "tsx", file, ...args];
  const proc = spawn(line[0] as string, line.slice(1), {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
    detached: options.command !== undefined,
  });
  const messages: Record<string, unknown>[] = [];
  const waiting = new Set<() => void>();
  let buffered = "";
  let errors = "";
  proc.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const text of lines) {
      if (!text.startsWith("{")) continue;
      try {
        messages.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        // Not one of ours.
      }
    }
    for (const check of [...waiting]) check();
  });
  proc.stderr?.on("data", (chunk: Buffer) => {
    errors += chunk.toString();
  });
  proc.stdin?.on("error", () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => {
      resolve({ code, signal });
      for (const check of [...waiting]) check();
    }),
  );
  let exitedNow = false;
  void exited.then(() => {
    exitedNow = true;
  });
  return {
    process: proc,
    messages,
    next(matches, what, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(check);
          reject(new Error(`timed out waiting for ${what}; stderr: ${errors.slice(-2000)}`));
        }, timeoutMs);
        const check = () => {
          const found = messages.find(matches);
          if (found || exitedNow) {
            waiting.delete(check);
            clearTimeout(timer);
            if (found) resolve(found);
            else reject(new Error(`the child exited before ${what}; stderr: ${errors.slice(-2000)}`));
          }
        };
        waiting.add(check);
        check();
      });
    },
    send(text) {
      proc.stdin?.write(`${text}\n`);
    },
    exited,
    stderr: () => errors,
    async kill() {
      if (!exitedNow) {
        try {
          if (options.command && proc.pid) process.kill(-proc.pid, "SIGKILL");
          else proc.kill("SIGKILL");
        } catch {
          // Gone already.
        }
      }
      await exited;
    },
  };
}

/** Polls `condition` every 25 ms until it holds, or throws naming `what` after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
