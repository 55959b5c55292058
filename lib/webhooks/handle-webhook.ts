import { createHmac, timingSafeEqual } from "node:crypto";
import { TsWorkflowError } from "../core/errors.ts";
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

/** Why a webhook call was refused: stable, for callers to act on (the `error` text may change). */
export type WebhookErrorCode =
  | "BODY_TOO_LARGE"
  | "INVALID_JSON"
  | "MISSING_TIMESTAMP"
  | "STALE_TIMESTAMP"
  | "BAD_SIGNATURE"
  | "UNKNOWN_TOKEN"
  | "ALREADY_CALLED"
  | "EXPIRED"
  | "INVALID_PAYLOAD";

export interface WebhookResponse {
  status: 202 | 400 | 401 | 404 | 409 | 410 | 413;
  body: { ok: boolean; runId?: string; error?: string; code?: WebhookErrorCode };
}

/** Options of {@link handleWebhook}. */
export interface WebhookOptions {
  store: Pick<EventStore, "getRun" | "getEvents">;
  sendEvent(
    runId: string,
    eventName: string,
    payload: unknown,
    options: { signalId: string },
  ): Promise<{ delivered: boolean }>;
  /**
   * When set, every call must carry `x-tsworkflow-timestamp` (epoch ms) and
   * `x-tsworkflow-signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<token>.<body>" with this secret>`
   * (see {@link signWebhook}): a signature is good for its own token only.
   * @default no signature required (the token alone authorizes one call)
   */
  secret?: string;
  /** How far a signed timestamp may be from now. @default 300000 (5 minutes) */
  toleranceMs?: number;
  /** Largest body accepted. @default 262144 (256 KB) */
  maxBodyBytes?: number;
  /** @default Date.now */
  now?: () => number;
}

/** The largest webhook body the servers accept unless told otherwise. */
export const DEFAULT_WEBHOOK_MAX_BYTES = 256 * 1024;

const STATUS: Record<WebhookErrorCode, WebhookResponse["status"]> = {
  BODY_TOO_LARGE: 413,
  INVALID_JSON: 400,
  MISSING_TIMESTAMP: 401,
  STALE_TIMESTAMP: 401,
  BAD_SIGNATURE: 401,
  UNKNOWN_TOKEN: 404,
  ALREADY_CALLED: 409,
  EXPIRED: 410,
  INVALID_PAYLOAD: 400,
};

/** A refused call: its status, its stable code and what to do. */
export function webhookError(code: WebhookErrorCode, error: string): WebhookResponse {
  return { status: STATUS[code], body: { ok: false, error, code } };
}

/** 413 `BODY_TOO_LARGE`: the body is over `maxBytes`. */
export const bodyTooLarge = (maxBytes: number) =>
  webhookError("BODY_TOO_LARGE", `The body is over ${maxBytes} bytes.`);
/** 404 `UNKNOWN_TOKEN`: no run holds a webhook with this token. */
export const unknownToken = () => webhookError("UNKNOWN_TOKEN", "Unknown webhook token.");
/** 409 `ALREADY_CALLED`: the token's webhook was called before (or its run has finished). */
const alreadyCalled = () => webhookError("ALREADY_CALLED", "This webhook was already called.");

/** Options of {@link signWebhook}. */
export interface SignWebhookOptions {
  /** The webhook's token, or its path (`hook.path`, `/hooks/<token>`). */
  token: string;
  /** Epoch milliseconds, sent as `x-tsworkflow-timestamp`. @default Date.now() */
  timestamp?: number;
  /** The exact body that is sent. */
  body: string;
}

/**
 * The headers that sign a webhook call: `x-tsworkflow-timestamp` and `x-tsworkflow-signature`
 * (`sha256=` and the hex HMAC-SHA256 of `"<timestamp>.<token>.<body>"`). Bound to the token, so a
 * captured call cannot be replayed to another webhook; bound to the time, so it is refused after
 * `toleranceMs` (5 minutes).
 * @example
 * import { signWebhook } from "tsworkflow";
 * const body = JSON.stringify({ approved: true });
 * await fetch(`https://hooks.example.com${hook.path}`, {
 *   method: "POST",
 *   headers: { "content-type": "application/json", ...signWebhook(secret, { token: hook.path, body }) },
 *   body,
 * });
 */
export function signWebhook(
  secret: string,
  options: SignWebhookOptions,
): { "x-tsworkflow-timestamp": string; "x-tsworkflow-signature": string } {
  const timestamp = options.timestamp ?? Date.now();
  return {
    "x-tsworkflow-timestamp": String(timestamp),
    "x-tsworkflow-signature": signature(secret, timestamp, tokenOf(options.token), options.body),
  };
}

function signature(secret: string, timestamp: number, token: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${token}.${body}`).digest("hex")}`;
}

/** `/hooks/<token>` or `<token>` → `<token>`. */
function tokenOf(tokenOrPath: string): string {
  return tokenOrPath.slice(tokenOrPath.lastIndexOf("/") + 1);
}

/**
 * Handles `POST /hooks/<token>`: checks the signature (when a secret is set), finds the run and the
 * webhook the token belongs to, and resumes the run with the JSON body. A token works once, however
 * many calls race for it: one gets 202, the others 409 (`ALREADY_CALLED`). Every refusal is a 4xx
 * with a stable `code` and stores nothing (the token stays unused): 413 `BODY_TOO_LARGE`, 400 `INVALID_JSON`,
 * 400 `INVALID_PAYLOAD` (a body that fails the hook's schema, checked where the workflow's code is
 * registered), 401 `MISSING_TIMESTAMP` / `STALE_TIMESTAMP` / `BAD_SIGNATURE`, 404 `UNKNOWN_TOKEN`.
 * @example
 * import { handleWebhook } from "tsworkflow";
 * const response = await handleWebhook({ token, body, headers }, { store, sendEvent: (...a) => runtime.sendEvent(...a), secret });
 */
export async function handleWebhook(
  request: WebhookRequest,
  options: WebhookOptions,
): Promise<WebhookResponse> {
  const { token, body, headers } = request;
  const maxBytes = options.maxBodyBytes ?? DEFAULT_WEBHOOK_MAX_BYTES;
  if (typeof body !== "string" || Buffer.byteLength(body) > maxBytes) return bodyTooLarge(maxBytes);
  const runId = typeof token === "string" ? token.slice(0, Math.max(0, token.lastIndexOf("."))) : "";
  try {
    assertRunId(runId);
  } catch {
    return unknownToken();
  }
  if (options.secret !== undefined) {
    const refused = checkSignature(options.secret, token, body, headers, options);
    if (refused) return refused;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch {
    return webhookError("INVALID_JSON", "The body is not valid JSON.");
  }
  const run = await options.store.getRun(runId);
  const events = run ? await options.store.getEvents(runId) : [];
  const hook = events.find(
    (event): event is EventOf<"hook_created"> => event.type === "hook_created" && event.token === token,
  );
  if (!run || !hook) return unknownToken();
  const ended = events.find(
    (event) =>
      (event.type === "hook_received" || event.type === "hook_timed_out") && event.hookId === hook.hookId,
  );
  if (ended?.type === "hook_received") return alreadyCalled();
  // Nobody called it, but its wait is over: "already called" would send the caller looking for a call.
  if (ended || FINISHED_STATUSES.has(run.status))
    return webhookError(
      "EXPIRED",
      `This webhook's wait is over (${ended ? "timed out" : `its run is ${run.status}`}).`,
    );
  let delivered: boolean;
  try {
    // One event id per token, whatever the body or signature: the first call stores it, every other is refused.
    ({ delivered } = await options.sendEvent(runId, hook.eventName, payload, { signalId: `token:${token}` }));
  } catch (error) {
    if (!(error instanceof TsWorkflowError)) throw error;
    if (error.code === "INVALID_STATE") return alreadyCalled();
    if (error.code === "PAYLOAD_TOO_LARGE") return webhookError("BODY_TOO_LARGE", error.message);
    if (error.code === "NOT_SERIALIZABLE" || error.code === "INVALID_EVENT_PAYLOAD")
      return webhookError("INVALID_PAYLOAD", error.message);
    throw error;
  }
  if (!delivered) return alreadyCalled();
  return { status: 202, body: { ok: true, runId } };
}

function checkSignature(
  secret: string,
  token: string,
  body: string,
  headers: WebhookRequest["headers"],
  options: WebhookOptions,
): WebhookResponse | undefined {
  const stamp = headers["x-tsworkflow-timestamp"];
  const timestamp = Number(stamp);
  if (stamp === undefined || stamp === "" || !Number.isSafeInteger(timestamp))
    return webhookError(
      "MISSING_TIMESTAMP",
      "Missing x-tsworkflow-timestamp: sign each call with the current time in epoch milliseconds (signWebhook).",
    );
  const now = (options.now ?? Date.now)();
  if (Math.abs(now - timestamp) > (options.toleranceMs ?? 300_000))
    return webhookError(
      "STALE_TIMESTAMP",
      "Stale x-tsworkflow-timestamp: sign each call with the current time (a signed call is good for 5 minutes).",
    );
  const expected = Buffer.from(signature(secret, timestamp, token, body));
  const given = Buffer.from(headers["x-tsworkflow-signature"] ?? "");
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    return webhookError(
      "BAD_SIGNATURE",
      'Bad x-tsworkflow-signature: expected sha256=<hex HMAC-SHA256 of "<timestamp>.<token>.<body>"> for this webhook\'s token (signWebhook).',
    );
  return undefined;
}
