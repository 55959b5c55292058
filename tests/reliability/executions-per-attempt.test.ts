/**
 * With no fault injected, every recorded attempt of a step runs exactly once: the log is not enough (a log
 * can be perfect while a step ran three times), so each step function counts its real executions by
 * `(run, step id, attempt)` and the counts are compared with the `step_started` events of the log.
 *
 * Random programs nest parallel (`Promise.all`) and sequential groups of steps that take 0 to 4 ms and fail
 * some attempts (retried after 5 ms); a few runs go at once on one worker, with inline steps on and off, on
 * the memory, file, Redis (a real redis-server with BullMQ) and AWS (the real Lambda handlers over the SQS
 * emulator) backends. TSW_PROPERTY_SEED=<seed> replays a failure; TSW_PROPERTY_RUNS=<n> runs more cases.
 */
import fc from "fast-check";
import { configureLogging, type EventStore, getStepInfo, step, workflow } from "tsworkflow";
import { type RedisServer, startRedisServer } from "tsworkflow/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Backend,
  fileBackend,
  memoryBackend,
  redisBackend,
  waitForFinished,
} from "./support/backends.ts";
import { CrashSwitch } from "./support/faults.ts";
import { type SqsKit, startSqsKit } from "./support/sqs-kit.ts";

const RUNS = Number(process.env.TSW_PROPERTY_RUNS ?? 15);
const SEED = process.env.TSW_PROPERTY_SEED === undefined ? undefined : Number(process.env.TSW_PROPERTY_SEED);
const settings = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

type Node =
  | { kind: "step"; label: string; ms: number; fails: number }
  | { kind: "seq"; children: Node[] }
  | { kind: "par"; children: Node[] };

/** Real executions, by `runId/stepId#attempt`. */
const executions = new Map<string, number>();

const countedStep = step(
  "epa_step",
  async (spec: { label: string; ms: number; fails: number }) => {
    const info = getStepInfo();
    const key = `${info?.runId}/${info?.stepId}#${info?.attempt}`;
    executions.set(key, (executions.get(key) ?? 0) + 1);
    if (spec.ms > 0) await new Promise((resolve) => setTimeout(resolve, spec.ms));
    if ((info?.attempt ?? 1) <= spec.fails) throw new Error(`${spec.label} fails attempt ${info?.attempt}`);
    return spec.label;
  },
  { maxRetries: 2, retryDelay: 5 },
);

async function interpret(node: Node): Promise<unknown> {
  if (node.kind === "step") return countedStep({ label: node.label, ms: node.ms, fails: node.fails });
  if (node.kind === "par") return Promise.all(node.children.map(interpret));
  const results: unknown[] = [];
  for (const child of node.children) results.push(await interpret(child));
  return results;
}

const program = workflow("epa_program", async (root: Node) => interpret(root));

const leaf: fc.Arbitrary<Node> = fc.record({
  kind: fc.constant("step" as const),
  label: fc.constant(""),
  ms: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4 })),
  fails: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
});

const { tree } = fc.letrec<{ tree: Node }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 3, arbitrary: leaf },
    {
      weight: 2,
      arbitrary: fc
        .array(tie("tree"), { minLength: 1, maxLength: 4 })
        .map((children) => ({ kind: "seq" as const, children })),
    },
    {
      weight: 2,
      arbitrary: fc
        .array(tie("tree"), { minLength: 2, maxLength: 4 })
        .map((children) => ({ kind: "par" as const, children })),
    },
  ),
}));

/** Labels steps s0, s1… so that results are readable. */
function labelled(root: Node): Node {
  let count = 0;
  const walk = (node: Node): Node =>
    node.kind === "step" ? { ...node, label: `s${count++}` } : { ...node, children: node.children.map(walk) };
  return walk(root);
}

const batches = fc.array(tree.map(labelled), { minLength: 1, maxLength: 3 });

/** Each recorded attempt of the run's steps ran once, and nothing ran that the log does not record. */
async function expectOneExecutionPerAttempt(store: EventStore, runId: string): Promise<void> {
  const run = await waitForFinished(store, runId, 60_000);
  expect(run.status).toBe("completed");
  const attempts = (await store.getEvents(runId)).flatMap((event) =>
    event.type === "step_started" ? [`${runId}/${event.stepId}#${event.attempt}`] : [],
  );
  const ran = Object.fromEntries([...executions].filter(([key]) => key.startsWith(`${runId}/`)));
  expect(ran).toEqual(Object.fromEntries(attempts.map((key) => [key, 1])));
}

/** Starts `roots` at once on one worker of `backend` and checks every run. */
async function holdsOn(open: () => Backend): Promise<void> {
  const backend = open();
  const worker = await backend.startWorker(new CrashSwitch(undefined));
  try {
    await fc.assert(
      fc.asyncProperty(batches, async (roots) => {
        const started = await Promise.all(roots.map((root) => worker.engine.start(program, [root])));
        for (const { runId } of started) await expectOneExecutionPerAttempt(backend.reader(), runId);
      }),
      settings,
    );
  } finally {
    await worker.stop();
    await backend.close();
  }
}

beforeAll(() => configureLogging({ level: "silent" }));
afterAll(() => configureLogging());

describe("with no fault, each recorded step attempt runs exactly once", () => {
  for (const inlineSteps of [true, false]) {
    const mode = inlineSteps ? "with inline steps" : "without inline steps";

    it(`on the memory backend ${mode}`, async () => {
      await holdsOn(() => memoryBackend({ inlineSteps }));
    });

    it(`on the file backend ${mode}`, async () => {
      await holdsOn(() => fileBackend(undefined, { inlineSteps }));
    });
  }

  describe("on Redis", () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await startRedisServer();
    });
    afterAll(async () => {
      await server?.stop();
    });

    for (const inlineSteps of [true, false]) {
      it(`with BullMQ workers ${inlineSteps ? "with" : "without"} inline steps`, async () => {
        await holdsOn(() => redisBackend(server.url, { inlineSteps }));
      });
    }
  });

  for (const inlineSteps of [true, false]) {
    it(`on AWS (Lambda handlers over SQS) ${inlineSteps ? "with" : "without"} inline steps`, async () => {
      const kit: SqsKit = await startSqsKit([program], { visibilityTimeoutSeconds: 30, inlineSteps });
      try {
        await fc.assert(
          fc.asyncProperty(batches, async (roots) => {
            const started = await Promise.all(roots.map((root) => kit.start(program.name, [root])));
            for (const { runId } of started) await expectOneExecutionPerAttempt(kit.store, runId);
          }),
          settings,
        );
      } finally {
        await kit.stop();
      }
    });
  }
});
