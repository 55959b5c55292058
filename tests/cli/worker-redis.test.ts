import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type RedisServer, startRedisServer } from "../../lib/redis/redis-server.ts";
import { until } from "../local/support/child.ts";
import { REPO_ROOT, runCli } from "./run-cli.ts";

const BIN = fileURLToPath(new URL("../../bin/tsworkflow.js", import.meta.url));
const WORKFLOWS = "tests/cli/fixtures/workflows.ts";

/** `tsworkflow worker` as a process of its own, its output collected. */
function startWorker(url: string): { child: ChildProcess; output: () => string } {
  let output = "";
  const child = spawn(process.execPath, [BIN, "worker", "--redis", url, "--workflows", WORKFLOWS], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [child.stdout, child.stderr]) stream?.on("data", (chunk) => (output += String(chunk)));
  return { child, output: () => output };
}

/** A redis-server on a given port (the harness picks its own), for a server that comes back where it was. */
async function redisOnPort(port: number): Promise<ChildProcess> {
  const server = spawn(
    process.env.REDIS_SERVER_BIN ?? "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    const client = new Redis(port, "127.0.0.1", { lazyConnect: true, retryStrategy: () => null });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.ping();
      return server;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
  server.kill("SIGKILL");
  throw new Error(`redis-server on port ${port} did not answer`);
}

const count = (text: string, part: string) => text.split(part).length - 1;

describe("tsworkflow worker and an unusable Redis", () => {
  it("exits 1 at start-up with the one message runs list gives, when the server is unreachable", async () => {
    // Prepare
    const url = `redis://127.0.0.1:${await freePort()}`;
    // Act
    const [worker, list] = await Promise.all([
      runCli(["worker", "--redis", url, "--workflows", WORKFLOWS]),
      runCli(["runs", "list", "--redis", url]),
    ]);
    // Assess
    expect(worker.code).toBe(1);
    const message = `error: Cannot use Redis at ${url}: the server is unreachable`;
    expect(count(worker.stderr + worker.stdout, "Cannot use Redis")).toBe(1);
    expect(worker.stderr).toContain(message);
    expect(list.stderr).toContain(message);
    expect(worker.stdout).not.toContain("started");
  });

  it("refuses a URL that is not redis:// as a usage error, with the same message for the worker and runs list", async () => {
    // Act
    const [worker, list, fromEnvironment] = await Promise.all([
      runCli(["worker", "--redis", "http://127.0.0.1:6379", "--workflows", WORKFLOWS]),
      runCli(["runs", "list", "--redis", "http://127.0.0.1:6379"]),
      runCli(["worker", "--workflows", WORKFLOWS], { TSWORKFLOW_REDIS_URL: "127.0.0.1:6379" }),
    ]);
    // Assess
    const message =
      'error: --redis takes a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379; got "http://127.0.0.1:6379".';
    expect([worker.code, list.code, fromEnvironment.code]).toEqual([2, 2, 2]);
    expect(worker.stderr.trim()).toBe(message);
    expect(list.stderr.trim()).toBe(message);
    expect(fromEnvironment.stderr).toContain(
      'TSWORKFLOW_REDIS_URL takes a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379; got "127.0.0.1:6379".',
    );
  });

  describe("a server that requires a password", () => {
    let server: RedisServer;
    let url: string;

    beforeAll(async () => {
      server = await startRedisServer();
      url = server.url;
      const admin = new Redis(server.url);
      await admin.config("SET", "requirepass", "s3cret");
      admin.disconnect();
    });

    afterAll(async () => {
      await server?.stop();
    });

    it("gets the password advice, with one period, for a missing or a wrong password", async () => {
      // Prepare
      const wrong = url.replace("redis://", "redis://:wrong@");
      // Act
      const [missing, refused, worker, right] = await Promise.all([
        runCli(["runs", "list", "--redis", url]),
        runCli(["runs", "list", "--redis", wrong]),
        runCli(["worker", "--redis", wrong, "--workflows", WORKFLOWS]),
        runCli(["runs", "list", "--redis", url.replace("redis://", "redis://:s3cret@")]),
      ]);
      // Assess
      const advice =
        "the password in the URL: redis://:<password>@host:port, or redis://<user>:<password>@host:port for an ACL user.";
      expect(missing.code).toBe(1);
      expect(missing.stderr.trim()).toBe(
        `error: Cannot use Redis at ${url}: the server requires a password (NOAUTH Authentication required). Pass ${advice}`,
      );
      const redacted = url.replace("redis://", "redis://:***@");
      const wrongPassword = `error: Cannot use Redis at ${redacted}: the server refused the user or password (WRONGPASS invalid username-password pair or user is disabled). Check ${advice}`;
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim()).toBe(wrongPassword);
      expect(worker.code).toBe(1);
      expect(worker.stderr.trim()).toBe(wrongPassword);
      for (const result of [missing, refused, worker]) {
        expect(result.stderr).not.toContain("..");
        expect(result.stderr).not.toContain("redis-cli");
      }
      expect(right.code).toBe(0);
    });
  });

  it("says once that it lost Redis while running, and once that it is back, then goes on", async () => {
    // Prepare
    const port = await freePort();
    let server = await redisOnPort(port);
    const worker = startWorker(`redis://127.0.0.1:${port}`);
    try {
      await until(() => worker.output().includes("started"), "the worker to start");
      // Act
      server.kill("SIGKILL");
      await until(() => worker.output().includes("the server is unreachable"), "the outage to be logged");
      // Several seconds without Redis: BullMQ's workers report each reconnection that fails.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      const during = worker.output();
      server = await redisOnPort(port);
      await until(() => worker.output().includes("reachable again"), "the worker to see Redis back");
      const run = await runCli(["runs", "list", "--redis", `redis://127.0.0.1:${port}`]);
      // Assess
      expect(count(during, "unreachable")).toBe(1);
      expect(during).not.toContain("worker error");
      expect(during).toContain("keeps trying to reconnect");
      expect(count(worker.output(), "reachable again")).toBe(1);
      expect(worker.child.exitCode).toBeNull();
      expect(run.code).toBe(0);
    } finally {
      worker.child.kill("SIGTERM");
      await once(worker.child, "exit");
      server.kill("SIGKILL");
    }
  }, 60_000);
});
