import {
  ConfigurationError,
  configureLogging,
  deprecatePatch,
  patched,
  step,
  WorkflowVersionNotFoundError,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { Registry } from "tsworkflow/engine";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";
import { formatTimeline } from "tsworkflow/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { getLogger } from "../../lib/core/logger.ts";

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

const ran: string[] = [];
const greet = step("vt_greet", async (user: string) => `hello ${user}`);
const email = step("vt_email", async (user: string) => {
  ran.push(`email ${user}`);
  return `email to ${user}`;
});
const sms = step("vt_sms", async (user: string) => {
  ran.push(`sms ${user}`);
  return `sms to ${user}`;
});

/** One version of `vt_notify`, in a registry of its own (as if deployed in a new process). */
function deploy(body: (user: string) => Promise<string>): Registry {
  const registry = new Registry();
  registry.define(() => {
    workflow("vt_notify", body);
    step("vt_greet", greet.run);
    step("vt_email", email.run);
    step("vt_sms", sms.run);
  });
  return registry;
}

const v1 = deploy(async (user) => {
  await greet(user);
  await waitForEvent("go");
  const sent = await email(user);
  await waitForEvent("finish");
  return sent;
});
const patchedCode = deploy(async (user) => {
  await greet(user);
  await waitForEvent("go");
  const first = patched("sms-instead");
  // Asked again, the same answer.
  const sent = first && patched("sms-instead") ? await sms(user) : await email(user);
  await waitForEvent("finish");
  return sent;
});
const deprecated = deploy(async (user) => {
  await greet(user);
  await waitForEvent("go");
  deprecatePatch("sms-instead");
  const sent = await sms(user);
  await waitForEvent("finish");
  return sent;
});

async function waitsFor(
  runtime: { getEvents: LocalRuntime["getEvents"] },
  runId: string,
  eventName: string,
): Promise<void> {
  for (let tries = 0; tries < 500; tries += 1) {
    const events = await runtime.getEvents(runId);
    if (events.some((event) => event.type === "hook_created" && event.eventName === eventName)) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`run ${runId} never waited for ${eventName}`);
}

describe("patched()", () => {
  it("keeps runs past the patch on the old branch, sends the others down the new one, and records it once", async () => {
    // Prepare: runs of v1 before and past the changed point.
    ran.length = 0;
    const storage = new MemoryStorage();
    const old = new LocalRuntime({ storage, registry: v1 });
    const before = (await old.start("vt_notify", ["ann"])).runId;
    const past = (await old.start("vt_notify", ["bob"])).runId;
    await old.sendEvent(past, "go", null);
    await waitsFor(old, before, "go");
    await waitsFor(old, past, "finish");
    await old.close();
    // Act: the patched code on the same storage, then the code with the patch deprecated.
    const next = new LocalRuntime({ storage, registry: patchedCode });
    await next.sendEvent(before, "go", null);
    for (const runId of [before, past]) await next.sendEvent(runId, "finish", null);
    const results = [
      (await next.waitForRun(before, { timeoutMs: 10_000 })).result,
      (await next.waitForRun(past, { timeoutMs: 10_000 })).result,
    ];
    const waiting = (await next.start("vt_notify", ["cy"])).runId;
    await next.sendEvent(waiting, "go", null);
    await waitsFor(next, waiting, "finish");
    await next.close();
    const last = new LocalRuntime({ storage, registry: deprecated });
    const fresh = (await last.start("vt_notify", ["dan"])).runId;
    await last.sendEvent(fresh, "go", null);
    for (const runId of [waiting, fresh]) await last.sendEvent(runId, "finish", null);
    const later = [
      (await last.waitForRun(waiting, { timeoutMs: 10_000 })).result,
      (await last.waitForRun(fresh, { timeoutMs: 10_000 })).result,
    ];
    await last.close();
    // Assess
    expect(results).toEqual(["sms to ann", "email to bob"]);
    expect(later).toEqual(["sms to cy", "sms to dan"]);
    expect(ran).toEqual(["email bob", "sms ann", "sms cy", "sms dan"]);
    const patches = async (runId: string) =>
      (await storage.getEvents(runId)).filter((event) => event.type === "patch_applied");
    expect(await patches(past)).toEqual([]);
    for (const runId of [before, waiting, fresh]) {
      expect((await patches(runId)).map((event) => event.type === "patch_applied" && event.patchId)).toEqual([
        "sms-instead",
      ]);
    }
    const run = await storage.getRun(before);
    const timeline = formatTimeline(run as never, await storage.getEvents(before));
    expect(timeline).toMatch(/patch_applied\s+patch "sms-instead": new code/);
  });

  it("refuses an invalid patch id with a ConfigurationError inside the workflow", async () => {
    // Prepare
    const registry = new Registry();
    registry.define(() => workflow("vt_bad_patch", async () => patched("no spaces allowed")));
    const runtime = new LocalRuntime({ storage: new MemoryStorage(), registry });
    // Act
    const { runId } = await runtime.start("vt_bad_patch", []);
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    await runtime.close();
    // Assess
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ name: "ConfigurationError" });
    expect(run.error?.message).toContain('Invalid patch id "no spaces allowed" in patched()');
    expect(() => patched("x")).toThrow("patched() may only be used inside a workflow function.");
  });
});

describe("workflow versions", () => {
  const onboarding = (registry: Registry, version: string, label = version) =>
    registry.define(() =>
      workflow(
        "vt_onboarding",
        async (user: string) => {
          await waitForEvent("go");
          return `v${label} ${user}`;
        },
        { version },
      ),
    );

  it("runs each run on the version it started with, and new runs by name on the highest", async () => {
    // Prepare
    const storage = new MemoryStorage();
    const first = new Registry();
    onboarding(first, "9");
    const old = new LocalRuntime({ storage, registry: first });
    const oldRun = (await old.start("vt_onboarding", ["sue"])).runId;
    await old.close();
    const both = new Registry();
    const nine = onboarding(both, "9");
    onboarding(both, "10");
    // Act
    const runtime = new LocalRuntime({ storage, registry: both });
    const newRun = (await runtime.start("vt_onboarding", ["tom"])).runId;
    const pinned = (await runtime.start(nine, ["uma"])).runId;
    for (const runId of [oldRun, newRun, pinned]) await runtime.sendEvent(runId, "go", null);
    const runs = await Promise.all(
      [oldRun, newRun, pinned].map((runId) => runtime.waitForRun(runId, { timeoutMs: 10_000 })),
    );
    const listed = await runtime.listRuns();
    await runtime.close();
    // Assess
    expect(runs.map((run) => run.result)).toEqual(["v9 sue", "v10 tom", "v9 uma"]);
    expect(runs.map((run) => run.workflowVersion)).toEqual(["9", "10", "9"]);
    expect(listed.runs.map((run) => run.workflowVersion).sort()).toEqual(["10", "9", "9"]);
    const [started] = await storage.getEvents(newRun);
    expect(started).toMatchObject({ type: "workflow_started", workflowVersion: "10" });
  });

  it("leaves a run whose version this process lacks untouched, and goes on once that version is registered", async () => {
    // Prepare
    const storage = new MemoryStorage();
    const first = new Registry();
    onboarding(first, "1");
    const old = new LocalRuntime({ storage, registry: first });
    const runId = (await old.start("vt_onboarding", ["vic"])).runId;
    await waitsFor(old, runId, "go");
    await old.close();
    const before = await storage.getRun(runId);
    const later = new Registry();
    onboarding(later, "2");
    const warn = vi.spyOn(getLogger(), "warn");
    // Act
    const runtime = new LocalRuntime({ storage, registry: later });
    const refused = await runtime.engine
      .activate({ runId, cause: { kind: "recover" } })
      .catch((error) => error);
    await runtime.sendEvent(runId, "go", null);
    await vi.waitFor(() => expect(warn).toHaveBeenCalled(), { timeout: 10_000 });
    const warnings = warn.mock.calls.map(([message]) => message);
    warn.mockRestore();
    const parked = await storage.getRun(runId);
    onboarding(later, "1", "1-again");
    const run = await runtime.waitForRun(runId, { timeoutMs: 10_000 });
    await runtime.close();
    // Assess
    expect(refused).toBeInstanceOf(WorkflowVersionNotFoundError);
    expect(refused).toMatchObject({ code: "WORKFLOW_VERSION_NOT_FOUND", workflowVersion: "1" });
    expect(refused.message).toContain(
      'A run of workflow "vt_onboarding" started with version "1", but this process registers only "2"',
    );
    expect(parked).toEqual(before);
    expect(parked?.status).toBe("suspended");
    expect(warnings).toContain(
      'run waits for version "1" of workflow "vt_onboarding" to be registered in this process',
    );
    expect(run).toMatchObject({ status: "completed", result: "v1-again vic", workflowVersion: "1" });
  });

  it("refuses an invalid version label at definition time", () => {
    // Act
    const define = () =>
      new Registry().define(() => workflow("vt_bad_version", async () => 1, { version: "1 beta" }));
    // Assess
    expect(define).toThrow(ConfigurationError);
    expect(define).toThrow(
      'workflow("vt_bad_version"): version must be 1 to 64 letters, digits, ".", "_" or "-", got "1 beta".',
    );
  });
});
