import { fileURLToPath } from "node:url";
import { step, workflow } from "tsworkflow";
import {
  defaultRegistry,
  type RedisRuntimeOptions,
  Registry,
  type RunningWorker,
  runWorker,
} from "tsworkflow/redis";
import { afterEach, describe, expect, it } from "vitest";
import { sequential } from "./fixtures/workflows.ts";
import { redisRuntimes } from "./runtimes.ts";

const WORKFLOWS = fileURLToPath(new URL("./fixtures/workflows.ts", import.meta.url));

/** What each implementation ran, by label: a clash would show up here as the other side's runs. */
const ran: string[] = [];

const deliver = step("reg_redis_deliver", async (to: string) => {
  ran.push(`real deliver ${to}`);
  return `delivered to ${to}`;
});
const notify = workflow("reg_redis_notify", async (to: string) => {
  const receipt = await deliver(to);
  return `${receipt} (notified)`;
});

/** One deploy's code: a workflow and a step of fixed names, in a registry of its own. */
function codeOf(label: string) {
  const registry = new Registry();
  const greet = registry.define(() => {
    const compose = step("reg_redis_compose", async (name: string) => {
      ran.push(`${label} compose ${name}`);
      return `${label}: hello ${name}`;
    });
    return workflow("reg_redis_greet", async (name: string) => `${await compose(name)}!`);
  });
  return { registry, greet };
}

const redis = redisRuntimes("reg");
const workers: RunningWorker[] = [];
const runtime = (options: Omit<RedisRuntimeOptions, "url" | "prefix">) => redis.runtime(options);

// Runs before redisRuntimes closes the runtimes (after-each hooks run last registered first).
afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop();
  ran.length = 0;
});

describe("Redis runtime registries", () => {
  for (const inlineSteps of [true, false]) {
    it(`runs two runtimes in one process with a workflow and a step of the same names and different code, each its own (inlineSteps: ${inlineSteps})`, async () => {
      // Prepare
      const blue = codeOf("blue");
      const green = codeOf("green");
      const onBlue = runtime({ registry: blue.registry, inlineSteps });
      const onGreen = runtime({ registry: green.registry, inlineSteps });
      await Promise.all([onBlue.startWorker(), onGreen.startWorker()]);

      // Act
      const [a, b] = await Promise.all([
        onBlue.start(blue.greet, ["Ada"]),
        onGreen.start(green.greet, ["Bob"]),
      ]);
      const [runA, runB] = await Promise.all([
        onBlue.waitForRun(a.runId, { timeoutMs: 60_000 }),
        onGreen.waitForRun(b.runId, { timeoutMs: 60_000 }),
      ]);

      // Assess
      expect(runA).toMatchObject({ status: "completed", result: "blue: hello Ada!" });
      expect(runB).toMatchObject({ status: "completed", result: "green: hello Bob!" });
      expect(ran.sort()).toEqual(["blue compose Ada", "green compose Bob"]);
      expect(defaultRegistry.findWorkflow("reg_redis_greet")).toBeUndefined();
    });

    it(`runs a step's replacement from a runtime's own registry, and the real step in a runtime on the default registry (inlineSteps: ${inlineSteps})`, async () => {
      // Prepare
      const registry = new Registry({ parent: defaultRegistry });
      registry.define(() =>
        step("reg_redis_deliver", async (to: string) => {
          ran.push(`fake deliver ${to}`);
          return `pretended to deliver to ${to}`;
        }),
      );
      const faked = runtime({ registry, inlineSteps });
      const real = runtime({ inlineSteps });
      await Promise.all([faked.startWorker(), real.startWorker()]);

      // Act
      const fakedRun = await faked.start(notify, ["ann"]);
      const realRun = await real.start(notify, ["ann"]);
      const [fakedResult, realResult] = await Promise.all([
        faked.waitForRun(fakedRun.runId, { timeoutMs: 60_000 }),
        real.waitForRun(realRun.runId, { timeoutMs: 60_000 }),
      ]);

      // Assess
      expect(fakedResult).toMatchObject({
        status: "completed",
        result: "pretended to deliver to ann (notified)",
      });
      expect(realResult).toMatchObject({ status: "completed", result: "delivered to ann (notified)" });
      expect(ran.sort()).toEqual(["fake deliver ann", "real deliver ann"]);
    });
  }

  it("runs a worker's steps from the registry given to runWorker, over the workflows module it imports", async () => {
    // Prepare: `double` of the workflows module triples in this worker.
    const registry = new Registry({ parent: defaultRegistry });
    registry.define(() =>
      step("double", async (n: number) => {
        ran.push(`triple ${n}`);
        return { value: n * 3, worker: "replacement" };
      }),
    );
    const worker = await runWorker({
      redis: redis.url,
      workflows: WORKFLOWS,
      prefix: `tsw-reg-${process.pid}-worker:`,
      handleSignals: false,
      registry,
    });
    workers.push(worker);

    // Act
    const { runId } = await worker.runtime.start(sequential, [1]);
    const run = await worker.runtime.waitForRun(runId, { timeoutMs: 60_000 });

    // Assess
    expect(run).toMatchObject({ status: "completed", result: 27 });
    expect(ran).toEqual(["triple 1", "triple 3", "triple 9"]);
  });
});
