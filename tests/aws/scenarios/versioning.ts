import { afterAll, describe, expect, it } from "vitest";
import { createClient, type TsWorkflowClient } from "../../../lib/aws/client.ts";
import { Registry } from "../../../lib/core/registry.ts";
import { replayHistory } from "../../../lib/engine/replay-check.ts";
import { continueAsNew, patched, step, waitForEvent, workflow } from "../../../lib/index.ts";
import { deployStack, type Emulators, ofType, type Stack } from "../harness/aws-stack.ts";

/**
 * Code changed under live runs on the AWS runtime: a first deploy leaves runs waiting, a second deploy (its
 * own functions, queues and code) goes on with them: patched() keeps runs that passed the point on the old
 * branch, each run keeps its workflow version, and a continueAsNew chain links its runs.
 */

/** The code of one deploy, in a registry of its own (each deploy's functions load only theirs). */
function deployCode(code: "v1" | "patched" | "unpatched"): Registry {
  const patchedNotify = code === "patched";
  const registry = new Registry();
  registry.define(() => {
    const greet = step("aws_v_greet", async (user: string) => `hello ${user}`);
    const email = step("aws_v_email", async (user: string) => `email to ${user}`);
    const sms = step("aws_v_sms", async (user: string) => `sms to ${user}`);
    workflow("aws_v_notify", async (user: string) => {
      await greet(user);
      await waitForEvent("go");
      const takesSms = code === "unpatched" || (patchedNotify && patched("sms-instead"));
      const sent = takesSms ? await sms(user) : await email(user);
      await waitForEvent("finish");
      return sent;
    });
    const onboarding = (version: string) =>
      workflow(
        "aws_v_onboarding",
        async (user: string) => {
          await waitForEvent("go");
          return `v${version} ${user}`;
        },
        { version },
      );
    onboarding("1");
    if (patchedNotify) onboarding("2");
    workflow("aws_v_loop", async (generation: number) =>
      generation < 3 ? continueAsNew(generation + 1) : `ended in generation ${generation}`,
    );
  });
  return registry;
}

export function describeVersioning(emulatorsOf: () => Emulators): void {
  describe("changing workflow code between deploys on the AWS runtime", () => {
    const stacks: Stack[] = [];
    const clients: TsWorkflowClient[] = [];
    afterAll(async () => {
      for (const client of clients) await client.close();
      for (const stack of stacks) await stack.stop();
    });
    const deploy = (registry: Registry) => {
      const workflows = registry.registeredWorkflows();
      const stack = deployStack(emulatorsOf(), { workflows }, { registry });
      stacks.push(stack);
      const client = createClient(stack.config, {
        clients: { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs },
      });
      clients.push(client);
      return { stack, client };
    };
    const waitsFor = async (stack: Stack, runId: string, eventName: string) => {
      await stack.waitForStatus(runId, "suspended");
      for (let tries = 0; tries < 400; tries += 1) {
        const hooks = ofType(await stack.events(runId), "hook_created");
        if (hooks.some((hook) => hook.eventName === eventName)) return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`run ${runId} never waited for ${eventName}`);
    };

    it("keeps runs past a patch on the old branch and each run on its version, across a deploy", async () => {
      // Prepare: the first deploy's runs, before and past the changed point.
      const first = deploy(deployCode("v1"));
      const before = (await first.stack.invokeStart({ workflow: "aws_v_notify", args: ["ann"] })).runId;
      const past = (await first.stack.invokeStart({ workflow: "aws_v_notify", args: ["bob"] })).runId;
      const versioned = (await first.stack.invokeStart({ workflow: "aws_v_onboarding", args: ["sue"] }))
        .runId;
      await waitsFor(first.stack, past, "go");
      await first.client.sendEvent(past, "go", null);
      await Promise.all([
        waitsFor(first.stack, before, "go"),
        waitsFor(first.stack, past, "finish"),
        waitsFor(first.stack, versioned, "go"),
      ]);
      await first.stack.stop();
      const replay = async (code: Registry) => {
        const reports = [];
        for (const runId of [before, past]) {
          const events = await first.stack.events(runId);
          reports.push(await replayHistory(code.findWorkflow("aws_v_notify") as never, events));
        }
        return reports.map((report) => report.ok);
      };
      const checked = {
        patched: await replay(deployCode("patched")),
        unpatched: await replay(deployCode("unpatched")),
      };
      // Act: the second deploy goes on with them and starts new ones.
      const second = deploy(deployCode("patched"));
      const fresh = (await second.stack.invokeStart({ workflow: "aws_v_notify", args: ["dan"] })).runId;
      const newVersion = (await second.stack.invokeStart({ workflow: "aws_v_onboarding", args: ["tom"] }))
        .runId;
      for (const runId of [before, fresh]) await second.client.sendEvent(runId, "go", null);
      for (const runId of [before, past, fresh]) await second.client.sendEvent(runId, "finish", null);
      for (const runId of [versioned, newVersion]) await second.client.sendEvent(runId, "go", null);
      const results: Record<string, unknown> = {};
      for (const [label, runId] of Object.entries({ before, past, fresh, versioned, newVersion }))
        results[label] = (await second.stack.waitForStatus(runId, "completed")).result;
      // Assess: the replay checker on the stored histories told the patched change from the other.
      expect(checked).toEqual({ patched: [true, true], unpatched: [true, false] });
      expect(results).toEqual({
        before: "sms to ann",
        past: "email to bob",
        fresh: "sms to dan",
        versioned: "v1 sue",
        newVersion: "v2 tom",
      });
      expect(ofType(await second.stack.events(past), "patch_applied")).toEqual([]);
      expect(ofType(await second.stack.events(before), "patch_applied").map((e) => e.patchId)).toEqual([
        "sms-instead",
      ]);
      expect((await second.client.getRun(newVersion))?.workflowVersion).toBe("2");
    });

    it("chains runs with continueAsNew, linked both ways, and the client follows the chain", async () => {
      // Prepare
      const { stack, client } = deploy(deployCode("patched"));
      // Act
      const { runId } = await stack.invokeStart({ workflow: "aws_v_loop", args: [1] });
      const chain = [await stack.waitForStatus(runId, "continued")];
      for (let generation = 2; generation <= 3; generation += 1) {
        const next = (await client.getRun(chain.at(-1)?.runId as string))?.continuedAs as string;
        chain.push(await stack.waitForStatus(next, generation < 3 ? "continued" : "completed"));
      }
      // Assess
      expect(chain.at(-1)?.result).toBe("ended in generation 3");
      const last = await client.getRun(chain[2]?.runId as string);
      expect(last?.continuedFrom).toBe(chain[1]?.runId);
      expect(await client.getRun(runId, { followContinuations: true })).toMatchObject({
        runId: chain[2]?.runId,
        status: "completed",
      });
      expect(ofType(await stack.events(runId), "workflow_continued_as_new")[0]).toMatchObject({
        input: [2],
        continuedAs: chain[1]?.runId,
      });
    });
  });
}
