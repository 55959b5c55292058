import { createHash, randomBytes } from "node:crypto";
import { QueryCommand, type QueryCommandOutput } from "@aws-sdk/client-dynamodb";
import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, describe, expect, it } from "vitest";
import { DynamoDBStorage } from "../../../lib/adapters/aws/dynamodb-storage.ts";
import { itemSize } from "../../../lib/adapters/aws/item-size.ts";
import { DYNAMODB_ITEM_LIMIT_BYTES, S3_MAX_PAYLOAD_BYTES } from "../../../lib/adapters/aws/limits.ts";
import { S3Payloads } from "../../../lib/adapters/aws/s3-payloads.ts";
import { createClient } from "../../../lib/aws/client.ts";
import { runChild, waitForEvent } from "../../../lib/core/primitives.ts";
import { MAX_PAYLOAD_BYTES } from "../../../lib/core/serialization.ts";
import { step } from "../../../lib/core/step.ts";
import { workflow } from "../../../lib/core/workflow.ts";
import {
  deployStack,
  type Emulators,
  ofType,
  PAYLOAD_BUCKET,
  type Stack,
  type StackOptions,
} from "../harness/aws-stack.ts";
import { waitFor } from "../harness/wait.ts";

/**
 * Payloads at DynamoDB's limits and beyond them, through the real handlers: every item fits by
 * construction (no bucket: 255 KB payloads), and with the payload bucket (s3rver) payloads up to
 * 10 MB go to S3 and come back on replay, in getRun, getEvents and the step function.
 */

/** A string whose JSON (with its quotes, and `extra` bytes around it) is exactly `bytes` long. */
const blob = (bytes: number, extra = 0, fill = "x") => fill.repeat(bytes - 2 - extra);
const executions = new Map<string, number>();

/** Returns a string whose JSON is exactly the cap, whatever its tag: `return await step()` at the cap. */
const atCap = step("aws_payload_at_cap", async (cap: number, tag: string) => {
  executions.set(tag, (executions.get(tag) ?? 0) + 1);
  return blob(cap, 0, tag.slice(0, 1));
});
const echoLength = step("aws_payload_echo_length", async (value: string) => value.length);

const capChild = workflow("aws_payload_cap_child", async (cap: number, input: string) => {
  await echoLength(input);
  return await atCap(cap, "child");
});

/** Input, parallel step results, a child's input and result and the workflow's result, all at the cap. */
const capWorkflow = workflow("aws_payload_cap", async (cap: number, input: string) => {
  const [a, b] = await Promise.all([atCap(cap, "a"), atCap(cap, "b")]);
  const child = await runChild(capChild, [cap, input]);
  const length = await echoLength(input);
  if (a.length + b.length + child.length + length === 0) throw new Error("empty");
  return await atCap(cap, "last");
});

/** The same, beyond DynamoDB: a 10 MB event payload too, and a step whose input is 10 MB. */
const bigWorkflow = workflow("aws_payload_big", async (cap: number, input: string) => {
  const event = await waitForEvent<string>("document");
  const [a, b] = await Promise.all([atCap(cap, "big-a"), echoLength(input)]);
  const fromEvent = await echoLength(event);
  if (a.length !== cap - 2 || b !== cap - 13 || fromEvent !== cap - 4) throw new Error("lengths differ");
  return await atCap(cap, "big-last");
});

/** `bytes` characters that DEFLATE cannot shrink below three quarters (base64 of SHA-256 digests), the same for a seed. */
const noise = (seed: string, bytes: number) => {
  let text = "";
  for (let index = 0; text.length < bytes; index += 1)
    text += createHash("sha256").update(`${seed}:${index}`).digest("base64");
  return text.slice(0, bytes);
};

/** What each attempt of the bulky step returned, by step index: the log must hold exactly these. */
const bulkyResults = new Map<number, string[]>();
/** 250 KB of random base64: under the 255 KB cap, about 190 KB compressed. */
const bulky = step("aws_payload_bulky", async (index: number) => {
  const result = randomBytes(187_500).toString("base64");
  bulkyResults.set(index, [...(bulkyResults.get(index) ?? []), result]);
  return result;
});
/** `count` parallel results of 250 KB: 24 of them pass DynamoDB's 4 MB transaction, even compressed. */
const fanOut = workflow("aws_payload_fan_out", async (count: number) => {
  const parts = await Promise.all(Array.from({ length: count }, (_, index) => bulky(index)));
  return parts.map((part) => part.length);
});
/** `count` parallel steps started at once, each with a 250 KB input: one commit of more than 4 MB. */
const bigInputs = workflow("aws_payload_big_inputs", async (count: number) =>
  Promise.all(Array.from({ length: count }, (_, index) => echoLength(noise(`input ${index}`, 250_000)))),
);

export function describePayloads(emulatorsOf: () => Emulators): void {
  describe("payloads at DynamoDB's limits and beyond", () => {
    const stacks: Stack[] = [];
    afterAll(async () => {
      for (const stack of stacks) await stack.stop();
    });
    const deploy = (options: StackOptions = {}) => {
      const stack = deployStack(
        emulatorsOf(),
        { workflows: [capWorkflow, capChild, bigWorkflow, fanOut, bigInputs] },
        options,
      );
      stacks.push(stack);
      return stack;
    };
    const itemsOf = async (stack: Stack, runId: string) => {
      const client = emulatorsOf().dynamo.client();
      const items: Record<string, unknown>[] = [];
      let start: QueryCommandOutput["LastEvaluatedKey"];
      do {
        const page: QueryCommandOutput = await client.send(
          new QueryCommand({
            TableName: stack.config.tableName,
            KeyConditionExpression: "pk = :pk",
            ExpressionAttributeValues: { ":pk": { S: `RUN#${runId}` } },
            ExclusiveStartKey: start,
          }),
        );
        items.push(...(page.Items ?? []).map((item) => unmarshall(item)));
        start = page.LastEvaluatedKey;
      } while (start);
      client.destroy();
      return items;
    };
    /** Messages in the stack's workflow DLQ. */
    const deadLettered = (stack: Stack) =>
      emulatorsOf().sqs.server.inspectQueue(stack.queues.workflowDlqUrl.split("/").at(-1) as string)?.messages
        .ready.length ?? 0;

    it("completes a run whose input, every step result, a child's input and result and the workflow result sit at the 255 KB cap, every item under 400 KB", async () => {
      // Prepare: no payload bucket, so everything stays in DynamoDB. Messages come back after 20 s, not
      // 2: an activation carrying these payloads must not be handed to a second poller meanwhile.
      const stack = deploy({ payloadBucket: false, visibilityTimeoutSeconds: 20 });
      const cap = MAX_PAYLOAD_BYTES;
      const input = blob(cap, 9); // the arguments [261120, "..."] are exactly the cap
      // Act
      const { runId } = await stack.invokeStart({ workflow: "aws_payload_cap", args: [cap, input] });
      const run = await stack.waitForStatus(runId, ["completed", "failed"], 90_000);
      // Assess
      expect(run.error).toBeUndefined();
      expect(run.status).toBe("completed");
      expect(JSON.stringify(run.result).length).toBe(cap);
      expect(JSON.stringify(run.input).length).toBe(cap);
      const events = await stack.events(runId);
      const [childRunId] = ofType(events, "child_started").map((event) => event.childRunId);
      const child = await stack.store.getRun(childRunId as string);
      expect(JSON.stringify(child?.result).length).toBe(cap);
      for (const id of [runId, childRunId as string]) {
        const items = await itemsOf(stack, id);
        for (const item of items) expect(itemSize(item)).toBeLessThanOrEqual(DYNAMODB_ITEM_LIMIT_BYTES);
        const document = items.find((item) => item.sk === "RUN");
        expect(itemSize(document ?? {})).toBeLessThan(8 * 1024);
        // No item repeats a payload held elsewhere: the document points to the commits.
        expect(document).toMatchObject({ inputAt: "COMMIT#0000000001" });
      }
      expect(executions.get("last")).toBe(1);
    });

    it("applies 24 parallel step results of 250 KB, over DynamoDB's 4 MB transaction together, in several commits without a payload bucket, and the run completes", async () => {
      // Prepare: no payload bucket. The workflow function is held back until every result is stored, so
      // that one activation finds them all (as a busy or throttled function would).
      const stack = deploy({ payloadBucket: false, visibilityTimeoutSeconds: 20 });
      const { runId } = await stack.invokeStart({ workflow: "aws_payload_fan_out", args: [24] });
      await stack.waitForStatus(runId, "running", 60_000);
      await stack.workflowMapping.stop();
      await waitFor(
        "the 24 results to be stored",
        async () => ((await stack.store.listOutcomes(runId)).length === 24 ? true : undefined),
        90_000,
      );
      // Act
      stack.workflowMapping.start();
      const run = await stack.waitForStatus(runId, ["completed", "failed"], 120_000);
      // Assess: every result in the log as the step returned it, each step run once, nothing dead-lettered.
      expect(run.error).toBeUndefined();
      expect(run.status).toBe("completed");
      expect(run.result).toEqual(Array(24).fill(250_000));
      const completed = ofType(await stack.events(runId), "step_completed");
      expect(completed).toHaveLength(24);
      for (const event of completed) {
        const attempts = bulkyResults.get(Number(event.stepId.split("#")[1])) ?? [];
        expect(attempts).toHaveLength(1);
        expect(event.result).toBe(attempts[0]);
      }
      const items = await itemsOf(stack, runId);
      for (const item of items) expect(itemSize(item)).toBeLessThanOrEqual(DYNAMODB_ITEM_LIMIT_BYTES);
      const heads = items.filter((item) => String(item.sk).startsWith("COMMIT#") && item.part === undefined);
      expect(heads.length).toBeGreaterThan(3);
      expect(deadLettered(stack)).toBe(0);
    });

    it("fails a run whose own new events pass DynamoDB's 4 MB transaction without a payload bucket, with a PayloadTooLargeError that names the setting, instead of retrying it into the DLQ", async () => {
      // Prepare: 24 steps started at once, each with a 250 KB input.
      const stack = deploy({ payloadBucket: false, visibilityTimeoutSeconds: 20 });
      // Act
      const { runId } = await stack.invokeStart({ workflow: "aws_payload_big_inputs", args: [24] });
      const run = await stack.waitForStatus(runId, ["completed", "failed"], 90_000);
      // Assess
      expect(run.status).toBe("failed");
      expect(run.error).toMatchObject({ name: "PayloadTooLargeError", code: "PAYLOAD_TOO_LARGE" });
      expect(run.error?.message).toMatch(
        /^A commit of 24 events to run \S+ is \d+ bytes, over the limit of 4128768 bytes\. Set TSWORKFLOW_PAYLOAD_BUCKET, as the DurableWorkflows construct does\.$/,
      );
      const events = await stack.events(runId);
      expect(events.map((event) => event.type)).toEqual(["workflow_started", "workflow_failed"]);
      expect(stack.stepMapping.stats.records).toBe(0);
      expect(deadLettered(stack)).toBe(0);
    });

    it("carries 10 MB inputs, step inputs and results, event payloads and results through S3 and reads them back everywhere", async () => {
      // Prepare (long visibility: see above)
      const stack = deploy({ visibilityTimeoutSeconds: 30 });
      const cap = S3_MAX_PAYLOAD_BYTES;
      const input = blob(cap, 11); // [10485760, "..."]
      const client = createClient(stack.config, {
        clients: { dynamodb: stack.clients.dynamodb, sqs: stack.clients.sqs, s3: stack.clients.s3 },
      });
      // Act
      const { runId } = await stack.invokeStart({ workflow: "aws_payload_big", args: [cap, input] });
      await stack.waitForStatus(runId, "suspended", 90_000);
      // The event's payload is then a step's input: [payload] at the cap.
      await client.sendEvent(runId, "document", blob(cap, 2));
      const run = await stack.waitForStatus(runId, ["completed", "failed"], 120_000);
      // Assess
      expect(run.error).toBeUndefined();
      expect(run.result).toEqual(blob(cap, 0, "b"));
      // A fresh store (the CLI, a dashboard) reads every payload back from S3.
      const reader = new DynamoDBStorage({
        client: emulatorsOf().dynamo.client(),
        tableName: stack.config.tableName,
        payloads: new S3Payloads({ client: stack.clients.s3 }),
      });
      const fresh = await reader.getRun(runId);
      expect(fresh?.input).toEqual([cap, input]);
      const events = await reader.getEvents(runId);
      expect(ofType(events, "hook_received")[0]?.payload).toEqual(blob(cap, 2));
      expect(ofType(events, "workflow_completed")[0]?.result).toEqual(run.result);
      for (const item of await itemsOf(stack, runId)) expect(itemSize(item)).toBeLessThan(64 * 1024);
      // One byte more is refused before anything is stored.
      await expect(client.start(bigWorkflow, [cap, `${blob(cap, 11)}x`])).rejects.toMatchObject({
        name: "PayloadTooLargeError",
      });
      await client.close();
      await reader.close();
    });

    it("loses no payload and leaves no dangling reference when a function dies between the S3 put and the commit", async () => {
      // Prepare: the start function dies after storing the input (before creating the run), and a later
      // function after storing another payload (before its commit or outcome).
      let puts = 0;
      const crashes: string[] = [];
      const stack = deploy({ visibilityTimeoutSeconds: 1 });
      stack.clients.s3.middlewareStack.add(
        (next, context) => async (args) => {
          const result = await next(args);
          if ((context as { commandName?: string }).commandName === "PutObjectCommand") {
            puts += 1;
            if (puts === 1 || puts === 3) {
              crashes.push((args.input as { Key?: string }).Key ?? "");
              throw new Error("killed after the S3 put");
            }
          }
          return result;
        },
        { step: "initialize", name: "crashAfterPut" },
      );
      const cap = 1024 * 1024;
      const start = {
        workflow: "aws_payload_cap",
        args: [cap, blob(cap, 10)],
        idempotencyKey: "crash-after-put",
      };
      // Act: the caller retries the start that failed.
      await expect(stack.invokeStart(start)).rejects.toThrow(/killed after the S3 put/);
      const { runId } = await stack.invokeStart(start);
      const run = await stack.waitForStatus(runId, ["completed", "failed"], 90_000);
      const crashed = crashes.length === 2;
      expect(run.error).toBeUndefined();
      // Assess
      expect(crashed).toBe(true);
      expect(run.status).toBe("completed");
      expect(JSON.stringify(run.result).length).toBe(cap);
      const events = await stack.events(runId);
      expect(ofType(events, "step_completed").every((event) => event.result !== null)).toBe(true);
      // Every reference names an object that exists.
      const refs = (await itemsOf(stack, runId)).flatMap((item) =>
        typeof item.refs === "string" ? (JSON.parse(item.refs) as { key: string }[]) : [],
      );
      expect(refs.length).toBeGreaterThan(0);
      for (const ref of refs) await expect(head(stack.clients.s3, ref.key)).resolves.toBe(true);
      const objects = await stack.clients.s3.send(
        new ListObjectsV2Command({ Bucket: PAYLOAD_BUCKET, Prefix: `runs/${runId}/` }),
      );
      expect(objects.Contents?.length).toBeGreaterThanOrEqual(new Set(refs.map((ref) => ref.key)).size);
    });
  });
}

async function head(client: S3Client, key: string): Promise<boolean> {
  await client.send(new HeadObjectCommand({ Bucket: PAYLOAD_BUCKET, Key: key }));
  return true;
}
