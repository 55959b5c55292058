/**
 * The crash matrix on the AWS runtime: the real Lambda handlers on DynamoDB Local, fauxqs and the fake
 * Scheduler, driven by the harness's event source mapping. A function invocation dies at a boundary
 * of a step of a Promise.all (before its task is sent, after it ran but before its outcome is stored,
 * after the outcome is stored but before the run is woken, after the commit that started it) or right
 * after committing a failed attempt's retry; SQS delivers the message again after its visibility
 * timeout. The run must complete with the undisturbed result and log, one step_completed per step.
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { type AnyWorkflow, configureLogging, type WorkflowEvent } from "tsworkflow";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployStack, type Emulators, startEmulators } from "../aws/harness/aws-stack.ts";
import { loseEveryNthWriteReply } from "../aws/harness/lost-replies.ts";
import { memoryBackend, waitForFinished } from "./support/backends.ts";
import {
  CRASH_FLOW_STEPS,
  canonicalTuples,
  completionsPerStep,
  crashFlow,
  executions,
  retryFlow,
} from "./support/crash-workflow.ts";
import { type Boundary, CrashSwitch, faultyStore } from "./support/faults.ts";

/** Dies (once) when the functions send the planned step's task, or the wake-up after its outcome. */
function crashOnSend(crash: CrashSwitch): (client: SQSClient) => void {
  return (client) => {
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { MessageBody?: string; Entries?: { MessageBody?: string }[] };
        const bodies = [input.MessageBody, ...(input.Entries ?? []).map((entry) => entry.MessageBody)];
        for (const body of bodies) {
          if (body === undefined) continue;
          const message = JSON.parse(body) as {
            kind: string;
            task: {
              stepId?: string;
              attempt?: number;
              cause?: { kind: string; stepId?: string; attempt?: number };
            };
          };
          if (message.kind === "step" && message.task.attempt === 1)
            crash.maybeTrip("before-step", message.task.stepId);
          const cause = message.task.cause;
          if (message.kind === "activation" && cause?.kind === "outcome" && cause.attempt === 1)
            crash.maybeTrip("before-wake", cause.stepId);
        }
        return next(args);
      },
      { step: "initialize", name: "crashOnSend" },
    );
  };
}

/** The retry waits 4 s: longer than SQS takes to deliver the activation again after a 1 s visibility timeout. */
const FLOWS = [
  [crashFlow, ["aws"]],
  [retryFlow, ["aws", 4_000]],
] as const;
const argsOf = (flow: AnyWorkflow) => FLOWS.find(([candidate]) => candidate === flow)?.[1] ?? [];

let emulators: Emulators;
const baselines = new Map<string, { result: unknown; canonical: string[] }>();

beforeAll(async () => {
  configureLogging({ level: "silent" });
  emulators = await startEmulators("tsworkflow-reliability");
  const backend = memoryBackend();
  const worker = await backend.startWorker(new CrashSwitch(undefined));
  for (const [flow, args] of FLOWS) {
    const { runId } = await worker.engine.start(flow, [...args]);
    const run = await waitForFinished(backend.reader(), runId);
    baselines.set(flow.name, {
      result: run.result,
      canonical: canonicalTuples(await backend.reader().getEvents(runId)),
    });
  }
  await worker.stop();
});

afterAll(async () => {
  await emulators?.stop();
  configureLogging();
});

async function crashOnAws(flow: AnyWorkflow, boundary: Boundary, stepId: string) {
  const crash = new CrashSwitch({ boundary, stepId, dead: false });
  const stack = deployStack(
    emulators,
    { workflows: [crashFlow, retryFlow] },
    {
      visibilityTimeoutSeconds: 1,
      wrapStepStore: (store) => faultyStore(store, crash),
      wrapWorkflowStore: (store) => faultyStore(store, crash),
      decorateSqs: crashOnSend(crash),
    },
  );
  try {
    const { runId } = await stack.invokeStart({ workflow: flow.name, args: [...argsOf(flow)] });
    const run = await stack.waitForStatus(runId, ["completed", "failed", "cancelled"], 30_000);
    const events: WorkflowEvent[] = await stack.events(runId);
    return { crashed: crash.crashed, run, events };
  } finally {
    await stack.stop();
  }
}

describe("a Lambda invocation that dies on the AWS runtime", () => {
  it.each([
    ["before-step", 1],
    ["before-outcome", 2],
    ["before-wake", 1],
    ["after-commit", 1],
  ] as [Boundary, number][])(
    "completes the run after dying at %s of a step of a Promise.all",
    async (boundary, runs) => {
      // Prepare
      const baseline = baselines.get(crashFlow.name);
      // Act
      const { crashed, run, events } = await crashOnAws(crashFlow, boundary, "cm_left#0");
      // Assess
      expect(crashed).toBe(true);
      expect(run.status).toBe("completed");
      expect(run.result).toEqual(baseline?.result);
      expect(completionsPerStep(events)).toEqual(Object.fromEntries(CRASH_FLOW_STEPS.map((id) => [id, 1])));
      expect(canonicalTuples(events)).toEqual(baseline?.canonical);
      expect(executions.get(`${run.runId}:cm_left#0`)).toBe(runs);
    },
  );

  it("completes the run after dying right after committing a failed attempt's retry", async () => {
    // Prepare
    const baseline = baselines.get(retryFlow.name);
    // Act
    const { crashed, run, events } = await crashOnAws(retryFlow, "after-retry-commit", "cm_flaky#0");
    // Assess
    expect(crashed).toBe(true);
    expect(run.status).toBe("completed");
    expect(run.result).toEqual(baseline?.result);
    expect(canonicalTuples(events)).toEqual(baseline?.canonical);
    expect(executions.get(`${run.runId}:cm_flaky#0`)).toBe(2);
  });
});

describe("AWS requests whose reply was lost", () => {
  it("completes every run with the undisturbed log when every third write's reply is lost and the SDK retries it", async () => {
    // Prepare
    const stack = deployStack(
      emulators,
      { workflows: [crashFlow, retryFlow] },
      { visibilityTimeoutSeconds: 1 },
    );
    const hitDynamoDB = loseEveryNthWriteReply(stack.clients.dynamodb, 3);
    const hitSqs = loseEveryNthWriteReply(stack.clients.sqs, 3);
    try {
      // Act
      const started = [];
      for (const [flow, args] of [...FLOWS, ...FLOWS])
        started.push({ flow, ...(await stack.invokeStart({ workflow: flow.name, args: [...args] })) });
      const finished = [];
      for (const { flow, runId } of started)
        finished.push({
          flow,
          run: await stack.waitForStatus(runId, ["completed", "failed", "cancelled"], 60_000),
        });
      // Assess
      expect(hitDynamoDB).toContain("PutItemCommand");
      expect(hitSqs.length).toBeGreaterThan(0);
      for (const { flow, run } of finished) {
        const baseline = baselines.get(flow.name);
        expect(run.status).toBe("completed");
        expect(run.result).toEqual(baseline?.result);
        expect(canonicalTuples(await stack.events(run.runId))).toEqual(baseline?.canonical);
      }
    } finally {
      await stack.stop();
    }
  }, 120_000);
});
