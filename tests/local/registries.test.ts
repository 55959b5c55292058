import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureLogging, step, workflow } from "tsworkflow";
import { defaultRegistry, LocalRuntime, Registry } from "tsworkflow/local";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { compareRegistries } from "../../examples/registries.ts";

/** What each implementation ran, by label: a clash would show up here as the other side's runs. */
const ran: string[] = [];

const deliver = step("reg_local_deliver", async (to: string) => {
  ran.push(`real deliver ${to}`);
  return `delivered to ${to}`;
});
const notify = workflow("reg_local_notify", async (to: string) => {
  const receipt = await deliver(to);
  return `${receipt} (notified)`;
});

/** One deploy's code: a workflow and a step of fixed names, in a registry of its own. */
function codeOf(label: string) {
  const registry = new Registry();
  const greet = registry.define(() => {
    const compose = step("reg_local_compose", async (name: string) => {
      ran.push(`${label} compose ${name}`);
      return `${label}: hello ${name}`;
    });
    return workflow("reg_local_greet", async (name: string) => `${await compose(name)}!`);
  });
  return { registry, greet };
}

const dirs: string[] = [];
const runtimes: LocalRuntime[] = [];

function runtime(options: ConstructorParameters<typeof LocalRuntime>[0]): LocalRuntime {
  const dir = mkdtempSync(join(tmpdir(), "tsw-registries-"));
  dirs.push(dir);
  const created = new LocalRuntime({ dir, ...options });
  runtimes.push(created);
  return created;
}

beforeAll(() => configureLogging({ level: "silent" }));

afterEach(async () => {
  for (const open of runtimes.splice(0)) await open.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  ran.length = 0;
});

describe("LocalRuntime registries", () => {
  for (const inlineSteps of [true, false]) {
    it(`runs two runtimes in one process with a workflow and a step of the same names and different code, each its own (inlineSteps: ${inlineSteps})`, async () => {
      // Prepare
      const blue = codeOf("blue");
      const green = codeOf("green");
      const onBlue = runtime({ registry: blue.registry, inlineSteps });
      const onGreen = runtime({ registry: green.registry, inlineSteps });

      // Act
      const [a, b] = await Promise.all([
        onBlue.start(blue.greet, ["Ada"]),
        onGreen.start(green.greet, ["Bob"]),
      ]);
      const [runA, runB] = await Promise.all([
        onBlue.waitForRun(a.runId, { timeoutMs: 30_000 }),
        onGreen.waitForRun(b.runId, { timeoutMs: 30_000 }),
      ]);

      // Assess
      expect(runA).toMatchObject({ status: "completed", result: "blue: hello Ada!" });
      expect(runB).toMatchObject({ status: "completed", result: "green: hello Bob!" });
      expect(ran.sort()).toEqual(["blue compose Ada", "green compose Bob"]);
      expect(defaultRegistry.findWorkflow("reg_local_greet")).toBeUndefined();
      expect(defaultRegistry.findStep("reg_local_compose")).toBeUndefined();
    });

    it(`runs a step's replacement from a runtime's own registry, and the real step in a runtime on the default registry (inlineSteps: ${inlineSteps})`, async () => {
      // Prepare
      const registry = new Registry({ parent: defaultRegistry });
      registry.define(() =>
        step("reg_local_deliver", async (to: string) => {
          ran.push(`fake deliver ${to}`);
          return `pretended to deliver to ${to}`;
        }),
      );
      const faked = runtime({ registry, inlineSteps });
      const real = runtime({ inlineSteps });

      // Act
      const fakedRun = await faked.start(notify, ["ann"]);
      const realRun = await real.start(notify, ["ann"]);
      const [fakedResult, realResult] = await Promise.all([
        faked.waitForRun(fakedRun.runId, { timeoutMs: 30_000 }),
        real.waitForRun(realRun.runId, { timeoutMs: 30_000 }),
      ]);

      // Assess
      expect(fakedResult).toMatchObject({
        status: "completed",
        result: "pretended to deliver to ann (notified)",
      });
      expect(realResult).toMatchObject({ status: "completed", result: "delivered to ann (notified)" });
      expect(ran.sort()).toEqual(["fake deliver ann", "real deliver ann"]);
      expect(defaultRegistry.findStep("reg_local_deliver")).toBe(deliver);
    });
  }
});

describe("examples/registries.ts", () => {
  it("runs billing with the real step, with a dry-run replacement, and as a sandbox's own workflow of the same name", async () => {
    // Act
    const results = await compareRegistries("acme");

    // Assess
    expect(results).toEqual([
      "billed acme: invoice mailed to acme",
      "billed acme: dry run, nothing mailed to acme",
      "sandbox bill for acme, nothing sent",
    ]);
  });

  it("is shown in the README as it is", () => {
    // Prepare
    const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");
    // Act
    const readme = read("README.md");
    // Assess
    expect(readme).toContain(read("examples/registries.ts"));
  });
});
