import { createHmac, timingSafeEqual } from "node:crypto";
import type { EventOf } from "../core/events.ts";
import { assertRunId } from "../core/ids.ts";
import { type EventStore, FINISHED_STATUSES } from "../ports/event-store.ts";

/** A call to `POST /hooks/<token>`, whatever HTTP server received it. */
export interface WebhookRequest {
  token: string;
  /** The raw body, as received (the signature covers these bytes). */
  body: string;
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
}

export interface WebhookResponse {
  status: 202 | 400 | 401 | 404 | 409 | 413;
  body: { ok: boolean; runId?: string; error?: string };
}

/** Options of {@link handleWebhook}. */
export interface WebhookOptions {
  store: EventStore;
  sendEvent(
    runId: string,
    eventName: string,
    payload: unknown,
    options: { signalId: string },
  ): Promise<{ delivered: boolean }>;
  /**
   * When set, every call must carry `x-tsworkflow-timestamp` (epoch ms) and
   * `x-tsworkflow-signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with this secret>`.
   * @default no signature required (the token alone authorizes one call)
   */
  secret?: string;
  /** How far a signed timestamp may be from now. @default 300000 (5 minutes) */
  toleranceMs?: number;
  /** Largest body accepted. @default 262144 (256 KB) */
  maxBodyBytes?: number;
  now?: () => number;
}

const reject = (status: WebhookResponse["status"], error: string): WebhookResponse => ({
  status,
  body: { ok: false, error },
});

/** The signature a sender puts in `x-tsworkflow-signature` for a body sent at `timestamp`. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/**
 * Handles `POST /hooks/<token>`: checks the signature (when a secret is set), finds the run and the
 * webhook the token belongs to, and resumes the run with the JSON body. A token works once: a replayed
 * call gets 409, a forged token 404, a bad or stale signature 401.
 * @example
 * const response = await handleWebhook({ token, body, headers }, { store, sendEvent: (...a) => runtime.sendEvent(...a), secret });
 */
export async function handleWebhook(
  request: WebhookRequest,
  options: WebhookOptions,
): Promise<WebhookResponse> {
  const { token, body, headers } = request;
  const maxBytes = options.maxBodyBytes ?? 256 * 1024;
  if (Buffer.byteLength(body) > maxBytes) return reject(413, `The body is over ${maxBytes} bytes.`);
  const runId = token.slice(0, Math.max(0, token.lastIndexOf(".")));
  try {
    assertRunId(runId);
  } catch {
    return reject(404, "Unknown webhook token.");
  }
  let signalId = `token:${token}`;
  if (options.secret !== undefined) {
    const timestamp = Number(headers["x-tsworkflow-timestamp"]);
    const signature = headers["x-tsworkflow-signature"] ?? "";
    const now = (options.now ?? Date.now)();
    if (!Number.isFinite(timestamp) || Math.abs(now - timestamp) > (options.toleranceMs ?? 300_000)) {
      return reject(401, "Missing or stale x-tsworkflow-timestamp: sign each call with the current time.");
    }
    const expected = Buffer.from(signWebhook(options.secret, timestamp, body));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      return reject(
        401,
        'Bad x-tsworkflow-signature: expected sha256=<HMAC-SHA256 of "<timestamp>.<body>">.',
      );
    }
    signalId = `signature:${signature.slice(7, 71)}`;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch {
    return reject(400, "The body is not valid JSON.");
  }
  const run = await options.store.getRun(runId);
  const events = run ? await options.store.getEvents(runId) : [];
  const hook = events.find(
    (event): event is EventOf<"hook_created"> => event.type === "hook_created" && event.token === token,
  );
  if (!run || !hook) return reject(404, "Unknown webhook token.");
  const received = events.some((event) => event.type === "hook_received" && event.hookId === hook.hookId);
  if (received || FINISHED_STATUSES.has(run.status)) return reject(409, "This webhook was already called.");
  const { delivered } = await options.sendEvent(runId, hook.eventName, payload, { signalId });
  if (!delivered) return reject(409, "This call was already received.");
  return { status: 202, body: { ok: true, runId } };
}
