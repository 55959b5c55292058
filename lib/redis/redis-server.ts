import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { Socket } from "node:net";
import { ConfigurationError } from "../core/errors.ts";
import { freePort } from "./free-port.ts";

export { freePort };

/**
 * Starts throwaway `redis-server` processes for tests, examples and local development: free loopback port,
 * nothing written to disk, stopped by `stop()`. Not for production (use a managed or supervised Redis).
 */

/** A throwaway redis-server on a free loopback port, with no persistence. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

const CANDIDATES = [
  process.env.REDIS_SERVER_BIN,
  "/usr/bin/redis-server",
  "/usr/local/bin/redis-server",
  "/opt/homebrew/bin/redis-server",
];

function findRedisServer(): string {
  const found = CANDIDATES.find((path): path is string => typeof path === "string" && existsSync(path));
  if (!found) {
    throw new ConfigurationError(
      "redis-server was not found (looked in /usr/bin, /usr/local/bin, /opt/homebrew/bin and $REDIS_SERVER_BIN). Install it: sudo apt-get install redis-server (Debian/Ubuntu) or brew install redis (macOS).",
    );
  }
  return found;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("error", () => done(false));
    socket.on("data", (chunk) => {
      answer += chunk.toString();
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"));
    });
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"));
  });
}

/**
 * Starts `redis-server` on a free loopback port (`--save "" --appendonly no`: nothing touches the disk),
 * waits until it answers PING, and returns a handle whose `stop()` shuts it down.
 * @example
 * import { startRedisServer } from "tsworkflow/redis";
 * const server = await startRedisServer();
 * console.log(server.url); // redis://127.0.0.1:<port>
 * await server.stop();
 * @throws ConfigurationError saying how to install redis-server when it is missing
 */
export async function startRedisServer(): Promise<RedisServer> {
  const bin = findRedisServer();
  let lastError: unknown;
  for (let tries = 0; tries < 3; tries += 1) {
    const port = await freePort();
    const child = spawn(
      bin,
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout?.on("data", (chunk) => {
      output += chunk.toString();
    });
    child.stderr?.on("data", (chunk) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const deadline = Date.now() + 10_000;
    let alive = true;
    void exited.then(() => {
      alive = false;
    });
    while (alive && Date.now() < deadline) {
      if (await ping(port)) {
        return {
          url: `redis://127.0.0.1:${port}`,
          port,
          process: child,
          stop: async () => {
            if (!alive) return;
            child.kill("SIGTERM");
            const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
            await exited;
            clearTimeout(timer);
          },
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    child.kill("SIGKILL");
    await exited;
    lastError = new Error(
      `redis-server on port ${port} did not answer PING: ${output.trim() || "(no output)"}`,
    );
  }
  throw lastError;
}
