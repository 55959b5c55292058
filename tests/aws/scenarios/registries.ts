import { afterAll, afterEach, describe, expect, it } from "vitest";
import { defaultRegistry, Registry, type WorkflowRegistry } from "../../../lib/aws/index.ts";
import { step } from "../../../lib/core/step.ts";
import { workflow } from "../../../lib/core/workflow.ts";
import { deployStack, type Emulators, type Stack, type StackOptions } from "../harness/aws-stack.ts";

/**
 * Registries per runtime on AWS: two deployments in one process (their own queues and functions, one
 * table) run workflows and steps of the same names with different code, each its own; and a deployment
 * whose registry replaces one step runs the replacement while another runs the real step.
 */

/** What each implementation ran, by label: a clash would show up here as the other side's runs. */
const ran: string[] = [];

const deliver = step("aws_reg_deliver", async (to: string) => {
  ran.push(`real deliver ${to}`);
  return `delivered to ${to}`;
});
const notify = workflow("aws_reg_notify", async (to: string) => {
  const receipt = await deliver(to);
  return `${receipt} (notified)`;
});

/** One deploy's code: a workflow and a step of fixed names, in a registry of its own. */
function codeOf(label: string) {
  const registry = new Registry();
  const greet = registry.define(() => {
    const compose = step("aws_reg_compose", async (name: string) => {
      ran.push(`${label} compose ${name}`);
      return `${label}: hello ${name}`;
    });
    return workflow("aws_reg_greet", async (name: string) => `${await compose(name)}!`);
  });
  return { registry, greet };
}

export function describeRegistries(emulatorsOf: () => Emulators): void {
  describe("registries per runtime on the AWS runtime", () => {
    const stacks: Stack[] = [];
    afterEach(() => {
      ran.length = 0;
    });
    afterAll(async () => {
      for (const stack of stacks) await stack.stop();
    });
    const deploy = (registry: WorkflowRegistry, options: StackOptions) => {
      const stack = deployStack(emulatorsOf(), registry, options);
      stacks.push(stack);
      return stack;
    };

    for (const inlineSteps of [true, false]) {
      it(`runs two deployments in one process with a workflow and a step of the same names and different code, each its own (inlineSteps: ${inlineSteps})`, async () => {
        // Prepare
        const blue = codeOf("blue");
        const green = codeOf("green");
        const onBlue = deploy({ workflows: [blue.greet] }, { registry: blue.registry, inlineSteps });
        const onGreen = deploy({ workflows: [green.greet] }, { registry: green.registry, inlineSteps });

        // Act
        const a = await onBlue.invokeStart({ workflow: "aws_reg_greet", args: ["Ada"] });
        const b = await onGreen.invokeStart({ workflow: "aws_reg_greet", args: ["Bob"] });
        const [runA, runB] = await Promise.all([
          onBlue.waitForStatus(a.runId, "completed"),
          onGreen.waitForStatus(b.runId, "completed"),
        ]);

        // Assess
        expect(runA.result).toBe("blue: hello Ada!");
        expect(runB.result).toBe("green: hello Bob!");
        expect(ran.sort()).toEqual(["blue compose Ada", "green compose Bob"]);
        expect(defaultRegistry.findWorkflow("aws_reg_greet")).toBeUndefined();
      });

      it(`runs a step's replacement from a deployment's own registry, and the real step in a deployment on the default registry (inlineSteps: ${inlineSteps})`, async () => {
        // Prepare
        const registry = new Registry({ parent: defaultRegistry });
        registry.define(() =>
          step("aws_reg_deliver", async (to: string) => {
            ran.push(`fake deliver ${to}`);
            return `pretended to deliver to ${to}`;
          }),
        );
        const faked = deploy({ workflows: [notify] }, { registry, inlineSteps });
        const real = deploy({ workflows: [notify] }, { inlineSteps });

        // Act
        const fakedRun = await faked.invokeStart({ workflow: "aws_reg_notify", args: ["ann"] });
        const realRun = await real.invokeStart({ workflow: "aws_reg_notify", args: ["ann"] });
        const [fakedResult, realResult] = await Promise.all([
          faked.waitForStatus(fakedRun.runId, "completed"),
          real.waitForStatus(realRun.runId, "completed"),
        ]);

        // Assess
        expect(fakedResult.result).toBe("pretended to deliver to ann (notified)");
        expect(realResult.result).toBe("delivered to ann (notified)");
        expect(ran.sort()).toEqual(["fake deliver ann", "real deliver ann"]);
      });
    }
  });
}
