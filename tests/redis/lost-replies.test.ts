/**
 * A connection that drops after Redis ran a command but before its reply arrived: ioredis connects again
 * and sends the command again (`autoResendUnfulfilledCommands`), so the storage's scripts run twice. A
 * commit or a run creation sent again must count as done, not as a conflict with itself (the run would
 * wait forever on steps that no one sent). Reproduced with a TCP proxy between ioredis and a real
 * redis-server that cuts the connection in place of the reply to a chosen command.
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { configureLogging } from "tsworkflow";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createRedisRuntime, type RedisRuntime } from "../../lib/runtimes/redis.ts";
import { CRASH_FLOW_STEPS, completionsPerStep, crashFlow } from "../reliability/support/crash-workflow.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

/** A proxy to `port` that, once armed, forwards the next client command matching `trigger` and then cuts
 * that connection when the server answers (the command ran; its reply is lost). */
class ReplyDroppingProxy {
  readonly server: Server;
  private trigger: ((chunk: string) => boolean) | undefined;
  /** How many replies were dropped. */
  dropped = 0;

  constructor(upstreamPort: number) {
    this.server = createServer((client: Socket) => {
      const upstream = connect(upstreamPort, "127.0.0.1");
      let cutOnReply = false;
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("data", (chunk) => {
        const text = chunk.toString("latin1");
        if (this.trigger?.(text)) {
          this.trigger = undefined;
          cutOnReply = true;
        }
        upstream.write(chunk);
      });
      upstream.on("data", (chunk) => {
        if (cutOnReply) {
          this.dropped += 1;
          close();
          return;
        }
        client.write(chunk);
      });
      client.on("error", close);
      upstream.on("error", close);
      client.on("close", close);
      upstream.on("close", close);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `redis://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Drops the reply to the next command whose bytes match `trigger`. */
  arm(trigger: (chunk: string) => boolean): void {
    this.trigger = trigger;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let redis: RedisServer;
let proxy: ReplyDroppingProxy;
let url: string;
let runtimes = 0;
const open: RedisRuntime[] = [];

async function runtime(options: { stalledAfterMs?: number } = {}): Promise<RedisRuntime> {
  const created = createRedisRuntime({ url, prefix: `tsw-lost-${process.pid}-${++runtimes}:`, ...options });
  open.push(created);
  await created.startWorker();
  return created;
}

beforeAll(async () => {
  configureLogging({ level: "silent" });
  redis = await startRedisServer();
  proxy = new ReplyDroppingProxy(redis.port);
  url = await proxy.listen();
});

afterEach(async () => {
  for (const item of open.splice(0)) await item.close();
});

afterAll(async () => {
  await proxy?.close();
  await redis?.stop();
  configureLogging();
});

describe("Redis commands whose reply was lost", () => {
  it("goes on with a run when the reply to a commit that started steps was lost", async () => {
    // Prepare
    const rt = await runtime();
    proxy.arm((chunk) => chunk.includes('"type":"step_started"') && chunk.includes("cm_left"));
    const dropped = proxy.dropped;
    // Act
    const { runId } = await rt.start(crashFlow, ["lost-commit"]);
    const run = await rt.waitForRun(runId, { timeoutMs: 20_000 });
    // Assess
    expect(proxy.dropped).toBe(dropped + 1);
    expect(run.status).toBe("completed");
    expect(run.result).toBe("last(left(first(lost-commit)), right(first(lost-commit)))");
    const events = await rt.getEvents(runId);
    expect(completionsPerStep(events)).toEqual(Object.fromEntries(CRASH_FLOW_STEPS.map((id) => [id, 1])));
  }, 30_000);

  it("goes on with a run when the reply to taking the run's lock was lost", async () => {
    // Prepare: run locks that live 10 minutes, so a lock taken and then thought held by someone else would
    // hold the run up far beyond the test's wait.
    const rt = await runtime({ stalledAfterMs: 600_000 });
    proxy.arm((chunk) => chunk.includes("lock:run_"));
    const dropped = proxy.dropped;
    // Act
    const { runId } = await rt.start(crashFlow, ["lost-lock"]);
    const run = await rt.waitForRun(runId, { timeoutMs: 20_000 });
    // Assess
    expect(proxy.dropped).toBe(dropped + 1);
    expect(run.status).toBe("completed");
  }, 30_000);

  it("starts a run once, without an error, when the reply to its creation was lost", async () => {
    // Prepare
    const rt = await runtime();
    proxy.arm((chunk) => chunk.includes('"type":"workflow_started"') && chunk.includes("lost-start"));
    const dropped = proxy.dropped;
    // Act
    const started = await rt.start(crashFlow, ["lost-start"]);
    const run = await rt.waitForRun(started.runId, { timeoutMs: 20_000 });
    // Assess
    expect(proxy.dropped).toBe(dropped + 1);
    expect(started.created).toBe(true);
    expect(run.status).toBe("completed");
    expect((await rt.listRuns()).runs.map((listed) => listed.runId)).toEqual([started.runId]);
  }, 30_000);

  it("starts a run once when the reply to its creation with an idempotency key was lost", async () => {
    // Prepare
    const rt = await runtime();
    proxy.arm((chunk) => chunk.includes('"type":"workflow_started"') && chunk.includes("lost-keyed"));
    const dropped = proxy.dropped;
    // Act
    const started = await rt.start(crashFlow, ["lost-keyed"], { idempotencyKey: "order-lost-keyed" });
    const again = await rt.start(crashFlow, ["lost-keyed"], { idempotencyKey: "order-lost-keyed" });
    const run = await rt.waitForRun(started.runId, { timeoutMs: 20_000 });
    // Assess
    expect(proxy.dropped).toBe(dropped + 1);
    expect(started.created).toBe(true);
    expect(again).toEqual({ runId: started.runId, created: false });
    expect(run.status).toBe("completed");
  }, 30_000);
});
