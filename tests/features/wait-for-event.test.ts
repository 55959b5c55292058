import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigurationError,
  createWebhook,
  EventPayloadError,
  InvalidRunStateError,
  TimeoutError,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { inboxIds } from "tsworkflow/engine";
import { FileStorage, MemoryStorage } from "tsworkflow/local";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import { z } from "zod";
import { handleWebhook, signWebhook } from "../../lib/webhooks/handle-webhook.ts";
import { virtualRuntime } from "./support.ts";

const approval = workflow("wfe_approval", async (orderId: string) => {
  try {
    const decision = await waitForEvent("approval", {
      timeout: "3d",
      schema: z.object({ approved: z.boolean() }),
    });
    return { orderId, approved: decision.approved };
  } catch (error) {
    if (error instanceof TimeoutError) return { orderId, approved: false, expired: true };
    throw error;
  }
});

const twoEvents = workflow("wfe_two_events", async () => {
  const first = await waitForEvent<string>("note");
  const second = await waitForEvent<string>("note");
  return [first, second];
});

const webhookWorkflow = workflow("wfe_webhook", async () => {
  const first = createWebhook<{ n: number }>();
  const second = createWebhook<{ n: number }>();
  const [a, b] = await Promise.all([first.wait(), second.wait()]);
  return { a: a.n, b: b.n, tokens: [first.token, second.token] };
});

describe("waitForEvent and sendEvent", () => {
  let env: ReturnType<typeof virtualRuntime>;
  afterEach(() => env.close());

  it("suspends the run until sendEvent delivers the payload", async () => {
    // Prepare
    env = virtualRuntime();
    const { runId } = await env.runtime.start(approval, ["o-1"]);
    await env.settle();
    expect((await env.run(runId)).status).toBe("suspended");

    // Act
    await env.runtime.sendEvent(runId, "approval", { approved: true });
    await env.settle();

    // Assess
    expect(await env.run(runId)).toMatchObject({
      status: "completed",
      result: { orderId: "o-1", approved: true },
    });
    expect(await env.types(runId)).toEqual([
      "workflow_started",
      "hook_created",
      "workflow_suspended",
      "workflow_resumed",
      "hook_received",
      "workflow_completed",
    ]);
  });

  it("resolves with a TimeoutError the workflow can catch when nothing arrives in time", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(approval, ["o-2"]);
    await env.settle();

    await env.advance(3 * 86_400_000);

    expect(await env.run(runId)).toMatchObject({
      status: "completed",
      result: { approved: false, expired: true },
    });
    expect(await env.types(runId)).toContain("hook_timed_out");
  });

  const DAY = 86_400_000;
  for (const backend of ["memory", "file"] as const)
    for (const { stored, offset, result } of [
      { stored: "1 ms before the deadline", offset: -1, result: { approved: true } },
      { stored: "at the deadline", offset: 0, result: { approved: false, expired: true } },
    ])
      it(`lets an event stored ${stored} decide the wait when its activation never came (${backend} store)`, async () => {
        // Prepare: the event is stored, and its sender dies before it sends the run's activation.
        const dir = mkdtempSync(join(tmpdir(), "tsw-wfe-"));
        onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
        env = virtualRuntime(backend === "file" ? new FileStorage({ dir }) : new MemoryStorage());
        const { runId } = await env.runtime.start(approval, ["o-5"]);
        await env.settle();
        const deadline = env.clock.now() + 3 * DAY;
        await env.storage.putOutcome({
          runId,
          stepId: inboxIds.signal("approval", "lost"),
          attempt: 1,
          recordedAt: new Date(deadline + offset).toISOString(),
          ok: true,
          result: { name: "approval", payload: { approved: true } },
        });

        // Act: the timeout's timer fires.
        await env.advance(3 * DAY + 1_000);

        // Assess
        expect(await env.run(runId)).toMatchObject({
          status: "completed",
          result: { orderId: "o-5", ...result },
        });
      });

  it("keeps an event that arrives before the wait, and delivers events in the order they were sent", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(twoEvents, []);
    await env.runtime.sendEvent(runId, "note", "first");
    await env.runtime.sendEvent(runId, "note", "second");

    await env.settle();

    expect(await env.run(runId)).toMatchObject({ status: "completed", result: ["first", "second"] });
  });

  it("delivers an event sent twice with one signal id only once", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(twoEvents, []);
    await env.settle();

    const first = await env.runtime.sendEvent(runId, "note", "once", { signalId: "delivery-1" });
    const again = await env.runtime.sendEvent(runId, "note", "once", { signalId: "delivery-1" });
    await env.settle();

    expect([first.delivered, again.delivered]).toEqual([true, false]);
    expect((await env.run(runId)).status).toBe("suspended");
    expect(
      (await env.storage.getEvents(runId)).filter((event) => event.type === "hook_received"),
    ).toHaveLength(1);
  });

  it("fails the wait with EventPayloadError when the payload does not match the schema", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(approval, ["o-3"]);
    await env.settle();

    await env.runtime.sendEvent(runId, "approval", { approved: "yes please" });
    await env.settle();

    const run = await env.run(runId);
    expect(run.status).toBe("failed");
    expect(run.error?.name).toBe(new EventPayloadError("x", []).name);
    expect(run.error?.message).toContain("approved");
  });

  it("refuses an event name that waitForEvent refuses, with the same error, storing nothing", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(twoEvents, []);
    await env.settle();
    const waitError = async (name: string) => {
      const refused = workflow(`wfe_wait_for_${name.length}`, async () => waitForEvent(name));
      const started = await env.runtime.start(refused, []);
      await env.settle();
      return (await env.run(started.runId)).error;
    };

    const messages: string[] = [];
    for (const name of ["bad name!", "", "x".repeat(101)]) {
      const thrown = await env.runtime.sendEvent(runId, name, 1).catch((error: unknown) => error);
      expect(thrown).toBeInstanceOf(ConfigurationError);
      messages.push((thrown as ConfigurationError).message);
      expect(await waitError(name)).toMatchObject({ name: "ConfigurationError", message: messages.at(-1) });
    }
    expect(messages[0]).toBe(
      'Invalid event name "bad name!": use 1 to 100 letters, digits, "_", ".", ":" or "-".',
    );
    expect(await env.storage.listOutcomes(runId)).toEqual([]);
  });

  it("refuses events for a finished run", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(approval, ["o-4"]);
    await env.settle();
    await env.runtime.sendEvent(runId, "approval", { approved: false });
    await env.settle();

    await expect(env.runtime.sendEvent(runId, "approval", { approved: true })).rejects.toBeInstanceOf(
      InvalidRunStateError,
    );
  });
});

describe("webhooks", () => {
  let env: ReturnType<typeof virtualRuntime>;
  afterEach(() => env.close());

  const send = (token: string, body: string, headers: Record<string, string> = {}, secret?: string) =>
    handleWebhook(
      { token, body, headers },
      {
        store: env.storage,
        sendEvent: (runId, name, payload, options) => env.runtime.sendEvent(runId, name, payload, options),
        ...(secret ? { secret, now: () => 1_000_000 } : {}),
      },
    );

  it("resumes each webhook of a run with the body posted to its own token, once", async () => {
    // Prepare
    env = virtualRuntime();
    const { runId } = await env.runtime.start(webhookWorkflow, []);
    await env.settle();
    const tokens = (await env.storage.getEvents(runId)).flatMap((event) =>
      event.type === "hook_created" && event.token ? [event.token] : [],
    );
    expect(tokens).toHaveLength(2);

    // Act
    const second = await send(tokens[1] as string, JSON.stringify({ n: 2 }));
    const first = await send(tokens[0] as string, JSON.stringify({ n: 1 }));
    await env.settle();
    const replayed = await send(tokens[0] as string, JSON.stringify({ n: 99 }));

    // Assess
    expect([first.status, second.status, replayed.status]).toEqual([202, 202, 409]);
    expect(await env.run(runId)).toMatchObject({ status: "completed", result: { a: 1, b: 2, tokens } });
  });

  it("refuses a signed call replayed to another token of the same run within the time window", async () => {
    // Prepare
    env = virtualRuntime();
    const { runId } = await env.runtime.start(webhookWorkflow, []);
    await env.settle();
    const [first, second] = (await env.storage.getEvents(runId)).flatMap((event) =>
      event.type === "hook_created" && event.token ? [event.token] : [],
    ) as [string, string];
    const body = JSON.stringify({ n: 1 });
    const signedForFirst = signWebhook("s3cret", { token: first, timestamp: 1_000_000, body });
    // Act
    const replayed = await send(second, body, signedForFirst, "s3cret");
    const genuine = await send(first, body, signedForFirst, "s3cret");
    // Assess
    expect(replayed).toMatchObject({ status: 401, body: { code: "BAD_SIGNATURE" } });
    expect(genuine.status).toBe(202);
    await env.settle();
    const received = (await env.storage.getEvents(runId)).flatMap((event) =>
      event.type === "hook_received" ? [event.signalId] : [],
    );
    expect(received).toEqual([expect.stringMatching(new RegExp(`:token:${first.replace(/[.]/g, "\\.")}$`))]);
  });

  it("rejects forged tokens, bad JSON, and unsigned or stale calls when a secret is set", async () => {
    env = virtualRuntime();
    const { runId } = await env.runtime.start(webhookWorkflow, []);
    await env.settle();
    const token = (await env.storage.getEvents(runId)).flatMap((event) =>
      event.type === "hook_created" && event.token ? [event.token] : [],
    )[0] as string;
    const body = JSON.stringify({ n: 5 });

    expect((await send(`${runId}.forged`, body)).body.code).toBe("UNKNOWN_TOKEN");
    expect((await send("../../etc.passwd", body)).status).toBe(404);
    expect((await send(token, "{not json")).body).toMatchObject({ code: "INVALID_JSON" });
    expect((await send(token, body, {}, "s3cret")).body).toMatchObject({ code: "MISSING_TIMESTAMP" });
    const stale = signWebhook("s3cret", { token, timestamp: 1, body });
    expect((await send(token, body, stale, "s3cret")).body).toMatchObject({ code: "STALE_TIMESTAMP" });
    const wrong = signWebhook("other", { token, timestamp: 1_000_000, body });
    expect((await send(token, body, wrong, "s3cret")).status).toBe(401);
    const signed = signWebhook("s3cret", { token: `/hooks/${token}`, timestamp: 1_000_000, body });
    expect((await send(token, body, signed, "s3cret")).status).toBe(202);
    expect((await send(token, body, signed, "s3cret")).status).toBe(409);
  });
});
