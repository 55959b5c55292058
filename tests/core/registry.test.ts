import { DuplicateNameError, step, workflow } from "tsworkflow";
import { defaultRegistry, findWorkflow, Registry, registeredWorkflows } from "tsworkflow/engine";
import { MemoryStorage } from "tsworkflow/local";
import { startLocal } from "tsworkflow/testing";
import { describe, expect, it } from "vitest";

const send = step("registry_send", async (to: string) => `sent to ${to}`);
const notify = workflow("registry_notify", async (to: string) => send(to));

describe("names of workflows and steps", () => {
  it("refuses a second step with a name already taken by another function, at definition time", async () => {
    // Prepare
    let caught: unknown;
    // Act
    try {
      step("registry_send", async (to: string) => `spam to ${to}`);
    } catch (error) {
      caught = error;
    }
    // Assess
    expect(caught).toBeInstanceOf(DuplicateNameError);
    expect(caught).toMatchObject({ name: "DuplicateNameError", code: "DUPLICATE_NAME" });
    expect((caught as Error).message).toContain('A step named "registry_send" is already defined');
    const storage = new MemoryStorage();
    const runId = await startLocal(notify, ["ann"], { storage });
    expect((await storage.getRun(runId))?.result).toBe("sent to ann");
  });

  it("refuses a second workflow with a name already taken by another function, at definition time", () => {
    // Prepare
    // Act
    const define = () => workflow("registry_notify", async () => "something else");
    // Assess
    expect(define).toThrow(DuplicateNameError);
    expect(define).toThrow('A workflow named "registry_notify" is already defined');
    expect(findWorkflow("registry_notify")).toBe(notify);
  });

  it("accepts the same definition again, as when a module is evaluated twice", () => {
    // Prepare
    const define = () => ({
      wf: workflow("registry_twice", async () => "same"),
      st: step("registry_twice_step", async () => "same"),
    });
    // Act
    const first = define();
    const second = define();
    // Assess
    expect(findWorkflow("registry_twice")).toBe(second.wf);
    expect(first.wf.name).toBe(second.wf.name);
    expect(registeredWorkflows().filter((w) => w.name === "registry_twice")).toHaveLength(1);
  });

  it("lets a test registry replace a step's implementation for its runs only", async () => {
    // Prepare
    const registry = new Registry({ parent: defaultRegistry });
    registry.define(() => step("registry_send", async (to: string) => `faked for ${to}`));
    const storage = new MemoryStorage();
    // Act
    const faked = await startLocal(notify, ["bob"], { storage, registry });
    const real = await startLocal(notify, ["bob"], { storage });
    // Assess
    expect((await storage.getRun(faked))?.result).toBe("faked for bob");
    expect((await storage.getRun(real))?.result).toBe("sent to bob");
  });

  it("lets two test registries define workflows of the same name side by side", async () => {
    // Prepare
    const a = new Registry({ parent: defaultRegistry });
    const b = new Registry({ parent: defaultRegistry });
    const inA = a.define(() => workflow("registry_same_name", async () => "from a"));
    b.define(() => workflow("registry_same_name", async () => "from b"));
    const storage = new MemoryStorage();
    // Act
    const runA = await startLocal(inA, [], { storage, registry: a });
    const runB = await startLocal(inA, [], { storage, registry: b });
    // Assess
    expect((await storage.getRun(runA))?.result).toBe("from a");
    expect((await storage.getRun(runB))?.result).toBe("from b");
    expect(findWorkflow("registry_same_name")).toBeUndefined();
  });
});
