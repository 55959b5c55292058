import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  createWebhook,
  type EventOf,
  type EventStore,
  TimeoutError,
  type WorkflowDefinition,
  type WorkflowEvent,
  waitForEvent,
  workflow,
} from "tsworkflow";
import { FileControl, FileStorage, LocalRuntime, MemoryStorage, serveWebhooks } from "tsworkflow/local";
import { createTestEnvironment } from "tsworkflow/testing";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { serveDashboard } from "../../lib/cli/dashboard/server.ts";
import {
  handleWebhook,
  signWebhook,
  type WebhookErrorCode,
  type WebhookResponse,
} from "../../lib/webhooks/handle-webhook.ts";

const hooked = workflow("wh_hooked", async () => {
  const hook = createWebhook<{ n: number }>();
  return (await hook.wait()).n;
});

const twoNotes = workflow("wh_two_notes", async () => {
  const first = await waitForEvent<string>("note");
  const second = await waitForEvent<string>("note");
  return [first, second];
});

const checked = workflow("wh_checked", async () => {
  const hook = createWebhook({ schema: z.object({ ok: z.boolean() }) });
  return (await hook.wait()).ok;
});

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "tsw-webhooks-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A run waiting on its webhook, and the webhook's token. */
async function waitingRun(
  runtime: LocalRuntime,
  definition: WorkflowDefinition<[], unknown> = hooked,
): Promise<{ runId: string; token: string }> {
  const { runId } = await runtime.start(definition, []);
  await runtime.idle();
  const created = (await runtime.getEvents(runId)).find((event) => event.type === "hook_created");
  return { runId, token: created?.type === "hook_created" ? (created.token as string) : "" };
}

const backends: [string, () => EventStore][] = [
  ["memory", () => new MemoryStorage()],
  ["file", () => new FileStorage({ dir: tempDir() })],
];

describe.each(backends)("one-time webhook tokens on the %s backend", (_name, storage) => {
  it.each([
    ["unsigned", undefined],
    ["signed, each call with its own body and signature", "s3cret"],
  ])(
    "answer exactly one of 20 concurrent %s calls with 202 and the run gets that call's body",
    async (_kind, secret) => {
      // Prepare
      const runtime = new LocalRuntime({ storage: storage() });
      const server = await serveWebhooks({ runtime, store: runtime.storage, ...(secret ? { secret } : {}) });
      try {
        const { runId, token } = await waitingRun(runtime);
        // Act
        const answers = await Promise.all(
          Array.from({ length: 20 }, async (_, n) => {
            const body = JSON.stringify({ n });
            const response = await fetch(`${server.url}/hooks/${token}`, {
              method: "POST",
              headers: {
                "content-type": "application/json",
                ...(secret ? signWebhook(secret, { token, body }) : {}),
              },
              body,
            });
            return { n, status: response.status, code: ((await response.json()) as { code?: string }).code };
          }),
        );
        const run = await runtime.waitForRun(runId, { timeoutMs: 30_000 });
        // Assess
        const accepted = answers.filter((answer) => answer.status === 202);
        expect(accepted).toHaveLength(1);
        expect(
          answers.filter((answer) => answer.status === 409 && answer.code === "ALREADY_CALLED"),
        ).toHaveLength(19);
        expect(run.result).toBe(accepted[0]?.n);
        expect(
          (await runtime.getEvents(runId)).filter((event) => event.type === "hook_received"),
        ).toHaveLength(1);
      } finally {
        await server.close();
        await runtime.close();
      }
    },
  );
});

describe.each(backends)(
  "webhook bodies checked against the hook's schema on the %s backend",
  (_name, storage) => {
    it("refuses a body that fails the schema with 400 INVALID_PAYLOAD naming the issue, storing nothing, and takes a good one after it, on serveWebhooks and the dashboard", async () => {
      // Prepare
      const runtime = new LocalRuntime({ storage: storage() });
      const webhooks = await serveWebhooks({ runtime, store: runtime.storage });
      const dashboard = await serveDashboard({
        storage: runtime,
        port: 0,
        webhooks: { sendEvent: (...args) => runtime.sendEvent(...args) },
      });
      try {
        for (const url of [`${webhooks.url}/`, dashboard.url]) {
          const { runId, token } = await waitingRun(runtime, checked);
          const post = async (body: unknown) => {
            const response = await fetch(`${url}hooks/${token}`, {
              method: "POST",
              body: JSON.stringify(body),
            });
            return { status: response.status, body: await response.json() };
          };
          const eventsBefore = await runtime.getEvents(runId);
          // Act
          const refused = await post({ ok: "yes" });
          await runtime.idle();
          const eventsAfterRefusal = await runtime.getEvents(runId);
          const statusAfterRefusal = (await runtime.getRun(runId))?.status;
          const outcomesAfterRefusal = await runtime.storage.listOutcomes(runId);
          const accepted = await post({ ok: true });
          const run = await runtime.waitForRun(runId, { timeoutMs: 30_000 });
          // Assess
          expect(refused, url).toEqual({
            status: 400,
            body: {
              ok: false,
              code: "INVALID_PAYLOAD",
              error:
                'The payload of event "webhook.0" does not match its schema: ok: Invalid input: expected boolean, received string.',
            },
          });
          expect(eventsAfterRefusal).toEqual(eventsBefore);
          expect(statusAfterRefusal).toBe("suspended");
          expect(outcomesAfterRefusal).toEqual([]);
          expect(accepted).toEqual({ status: 202, body: { ok: true, runId } });
          expect(run).toMatchObject({ status: "completed", result: true });
        }
      } finally {
        await webhooks.close();
        await dashboard.close();
        await runtime.close();
      }
    });
  },
);

describe("a webhook whose wait is over", () => {
  const patient = workflow("wh_patient", async () => {
    const hook = createWebhook<{ ok: boolean }>({ timeout: "1h" });
    try {
      return (await hook.wait()).ok ? "approved" : "refused";
    } catch (error) {
      if (error instanceof TimeoutError) return "timed out";
      throw error;
    }
  });
  const tokenOf = async (run: { events(): Promise<WorkflowEvent[]> }) =>
    ((await run.events()).find((event) => event.type === "hook_created") as EventOf<"hook_created">)
      .token as string;

  it("answers 410 EXPIRED, not 409 ALREADY_CALLED, when it timed out or its run ended without a call", async () => {
    // Prepare: one run whose webhook timed out, one cancelled while it waited, one whose webhook was called.
    const env = await createTestEnvironment({ timeSkipping: true });
    try {
      const timedOut = await env.start(patient, []);
      expect(await timedOut.result()).toBe("timed out");
      const cancelled = await env.start(patient, []);
      await cancelled.cancel("no longer needed");
      const called = await env.start(patient, []);
      await called.callWebhook(await tokenOf(called), { ok: true });
      // Act
      const answers = await Promise.all(
        [timedOut, cancelled, called].map(async (run) => run.callWebhook(await tokenOf(run), { ok: true })),
      );
      // Assess
      expect(answers.map(({ status, body }) => [status, body.code, body.error])).toEqual([
        [410, "EXPIRED", "This webhook's wait is over (timed out)."],
        [410, "EXPIRED", "This webhook's wait is over (its run is cancelled)."],
        [409, "ALREADY_CALLED", "This webhook was already called."],
      ]);
    } finally {
      await env.close();
    }
  });
});

describe("webhook bodies checked from another process on the file backend", () => {
  it("refuses a body that fails the schema through FileControl, with nothing left in the inbox", async () => {
    // Prepare: the app owns the directory; the call comes through a control, as `tsworkflow dashboard --workflows` sends it.
    const dir = tempDir();
    const runtime = new LocalRuntime({ dir });
    const control = new FileControl({ dir });
    try {
      const { runId, token } = await waitingRun(runtime, checked);
      const call = (body: unknown) =>
        handleWebhook(
          { token, body: JSON.stringify(body), headers: {} },
          { store: control.storage, sendEvent: (...args) => control.sendEvent(...args) },
        );
      // Act
      const refused = await call({ ok: 1 });
      const inboxAfterRefusal = readdirSync(join(dir, "inbox"));
      const accepted = await call({ ok: false });
      const run = await runtime.waitForRun(runId, { timeoutMs: 30_000 });
      // Assess
      expect(refused).toMatchObject({ status: 400, body: { code: "INVALID_PAYLOAD" } });
      expect(inboxAfterRefusal).toEqual([]);
      expect(accepted.status).toBe(202);
      expect(run).toMatchObject({ status: "completed", result: false });
    } finally {
      await control.close();
      await runtime.close();
    }
  });
});

describe("sendEvent answers", () => {
  it("says delivered: false for a signal id used before a restart of the file backend, and the run does not get it twice", async () => {
    // Prepare
    const dir = tempDir();
    const first = new LocalRuntime({ dir });
    const { runId } = await first.start(twoNotes, []);
    await first.idle();
    const before = await first.sendEvent(runId, "note", "hello", { signalId: "note-1" });
    await first.idle();
    await first.close();
    // Act
    const second = new LocalRuntime({ dir });
    await second.idle();
    const repeated = await second.sendEvent(runId, "note", "hello again", { signalId: "note-1" });
    await second.idle();
    const other = await second.sendEvent(runId, "note", "world", { signalId: "note-2" });
    const run = await second.waitForRun(runId, { timeoutMs: 30_000 });
    await second.close();
    // Assess
    expect(before).toEqual({ delivered: true });
    expect(repeated).toEqual({ delivered: false });
    expect(other).toEqual({ delivered: true });
    expect(run.result).toEqual(["hello", "world"]);
  });

  it("says delivered: false for a signal id the log has consumed, on the memory backend", async () => {
    // Prepare
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const { runId } = await runtime.start(twoNotes, []);
    await runtime.idle();
    await runtime.sendEvent(runId, "note", "a", { signalId: "once" });
    await runtime.idle();
    // Act
    const repeated = await runtime.sendEvent(runId, "note", "b", { signalId: "once" });
    await runtime.idle();
    // Assess
    expect(repeated).toEqual({ delivered: false });
    expect((await runtime.getRun(runId))?.status).toBe("suspended");
    await runtime.close();
  });
});

/** Sends a raw request and returns what came back and how many body bytes were written before it did. */
function rawPost(
  url: string,
  headers: string[],
  chunk: Buffer,
  chunked: boolean,
  maxBytes: number,
): Promise<{ response: string; sent: number }> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let response = "";
    let sent = 0;
    let answered = false;
    const finish = () => {
      socket.destroy();
      resolve({ response, sent });
    };
    socket.on("data", (data) => {
      response += data.toString();
      answered = true;
    });
    socket.on("close", finish);
    socket.on("error", () => finish());
    socket.on("connect", async () => {
      socket.write(`POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.join("\r\n")}\r\n\r\n`);
      while (!answered && sent < maxBytes && !socket.destroyed) {
        const frame = chunked
          ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")])
          : chunk;
        if (!socket.write(frame)) await new Promise((done) => socket.once("drain", done));
        sent += chunk.length;
        await new Promise((done) => setImmediate(done));
      }
      if (!answered) setTimeout(() => reject(new Error("no answer")), 30_000).unref();
    });
  });
}

describe("webhook bodies over the limit", () => {
  const servers = async () => {
    const runtime = new LocalRuntime({ storage: new MemoryStorage() });
    const { token } = await waitingRun(runtime);
    const webhooks = await serveWebhooks({ runtime, store: runtime.storage });
    const dashboard = await serveDashboard({
      storage: runtime,
      port: 0,
      webhooks: { sendEvent: (...args) => runtime.sendEvent(...args) },
    });
    return {
      token,
      urls: [`${webhooks.url}/hooks/${token}`, `${dashboard.url}hooks/${token}`],
      close: async () => {
        await webhooks.close();
        await dashboard.close();
        await runtime.close();
      },
    };
  };

  it("refuses a 400 MB body by its Content-Length with 413 before reading it, on serveWebhooks and the dashboard", async () => {
    // Prepare
    const { urls, close } = await servers();
    try {
      for (const url of urls) {
        // Act
        const { response, sent } = await rawPost(
          url,
          ["Content-Type: application/json", `Content-Length: ${400 * 1024 * 1024}`],
          Buffer.alloc(64 * 1024, 0x20),
          false,
          400 * 1024 * 1024,
        );
        // Assess: the answer came while the body had barely started.
        expect(response, url).toMatch(/^HTTP\/1\.1 413/);
        expect(response).toContain('"code":"BODY_TOO_LARGE"');
        expect(sent).toBeLessThan(64 * 1024 * 1024);
      }
    } finally {
      await close();
    }
  });

  it("cuts off a chunked body that grows past 256 KB with 413 and stops reading it, on serveWebhooks and the dashboard", async () => {
    // Prepare
    const { urls, close } = await servers();
    try {
      for (const url of urls) {
        // Act
        const { response, sent } = await rawPost(
          url,
          ["Content-Type: application/json", "Transfer-Encoding: chunked"],
          Buffer.alloc(64 * 1024, 0x20),
          true,
          400 * 1024 * 1024,
        );
        // Assess
        expect(response, url).toMatch(/^HTTP\/1\.1 413/);
        expect(sent).toBeLessThan(64 * 1024 * 1024);
      }
    } finally {
      await close();
    }
  });
});

const CODES: ReadonlySet<WebhookErrorCode> = new Set([
  "BODY_TOO_LARGE",
  "INVALID_JSON",
  "MISSING_TIMESTAMP",
  "STALE_TIMESTAMP",
  "BAD_SIGNATURE",
  "UNKNOWN_TOKEN",
  "ALREADY_CALLED",
  "INVALID_PAYLOAD",
]);

describe("webhook requests, fuzzed", () => {
  it("refuse every malformed, forged, unsigned, mis-signed or replayed call with a 4xx and a stable code, storing nothing", async () => {
    // Prepare: one run waiting on its webhook; every call below is bad in some way.
    const storage = new MemoryStorage();
    const runtime = new LocalRuntime({ storage });
    const { runId, token } = await waitingRun(runtime);
    const other = await waitingRun(runtime);
    const secret = "s3cret";
    const now = 1_000_000;
    const eventsBefore = await storage.getEvents(runId);
    const tokenArb = fc.oneof(
      fc.string(),
      fc.constantFrom(
        `${runId}.forged`,
        "../../etc/passwd",
        `${runId}`,
        ".",
        "",
        `${runId}.${"x".repeat(300)}`,
      ),
      fc.string().map((tail) => `${runId}.${tail}`),
      fc.constant(other.token),
    );
    const bodyArb = fc.oneof(
      fc.string(),
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc.constant("x".repeat(300_000)),
    );
    const headersArb = fc.oneof(
      fc.constant({}),
      fc.record({ "x-tsworkflow-timestamp": fc.string(), "x-tsworkflow-signature": fc.string() }),
      fc.record({
        "x-tsworkflow-timestamp": fc.integer().map(String),
        "x-tsworkflow-signature": fc.string(),
      }),
      // A genuine signature, for the other run's token or for an old time.
      fc
        .jsonValue()
        .map((value) =>
          signWebhook(secret, { token: other.token, timestamp: now, body: JSON.stringify(value) }),
        ),
      fc.constant(signWebhook(secret, { token, timestamp: 1, body: "{}" })),
    );
    // Act and Assess
    await fc.assert(
      fc.asyncProperty(tokenArb, bodyArb, headersArb, async (callToken, body, headers) => {
        // A genuine call to the other run's webhook (its token, a body signed for it) is not a bad call.
        const genuine = signWebhook(secret, { token: other.token, timestamp: now, body });
        fc.pre(
          !(
            callToken === other.token &&
            (headers as Record<string, string>)["x-tsworkflow-signature"] ===
              genuine["x-tsworkflow-signature"]
          ),
        );
        const response: WebhookResponse = await handleWebhook(
          { token: callToken, body, headers: headers as Record<string, string> },
          {
            store: storage,
            sendEvent: (id, name, payload, options) => runtime.sendEvent(id, name, payload, options),
            secret,
            now: () => now,
          },
        );
        expect(response.status).toBeGreaterThanOrEqual(400);
        expect(response.status).toBeLessThan(500);
        expect(CODES.has(response.body.code as WebhookErrorCode)).toBe(true);
        expect(response.body.error).toEqual(expect.any(String));
        expect(await storage.listOutcomes(runId)).toEqual([]);
        expect(await storage.listOutcomes(other.runId)).toEqual([]);
      }),
      { numRuns: Number(process.env.TSW_PROPERTY_RUNS ?? 300) },
    );
    await runtime.idle();
    expect(await storage.getEvents(runId)).toEqual(eventsBefore);
    await runtime.close();
  });

  it("store nothing for a refused call on the file backend either: no inbox file, no event", async () => {
    // Prepare
    const dir = tempDir();
    const runtime = new LocalRuntime({ dir });
    const { runId, token } = await waitingRun(runtime);
    const body = JSON.stringify({ n: 1 });
    const call = (request: Partial<{ token: string; body: string; headers: Record<string, string> }>) =>
      handleWebhook(
        { token, body, headers: {}, ...request },
        { store: runtime.storage, sendEvent: (...args) => runtime.sendEvent(...args), secret: "s3cret" },
      );
    // Act
    const refused = await Promise.all([
      call({}),
      call({ headers: signWebhook("wrong", { token, body }) }),
      call({ body: "{", headers: signWebhook("s3cret", { token, body: "{" }) }),
      call({ token: `${runId}.nope`, headers: signWebhook("s3cret", { token: `${runId}.nope`, body }) }),
    ]);
    await runtime.idle();
    // Assess
    expect(refused.map((response) => response.body.code)).toEqual([
      "MISSING_TIMESTAMP",
      "BAD_SIGNATURE",
      "INVALID_JSON",
      "UNKNOWN_TOKEN",
    ]);
    expect(readdirSync(join(dir, "inbox"))).toEqual([]);
    expect((await runtime.getEvents(runId)).some((event) => event.type === "hook_received")).toBe(false);
    await runtime.close();
  });
});
