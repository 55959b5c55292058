import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { optional } from "../core/optional.ts";
import type { EventStore } from "../ports/event-store.ts";
import type { Runtime } from "../ports/runtime.ts";
import { bodyTooLarge, DEFAULT_WEBHOOK_MAX_BYTES, handleWebhook, unknownToken } from "./handle-webhook.ts";

/** Options of {@link serveWebhooks}. */
export interface WebhookServerOptions {
  /** Where runs are resumed. */
  runtime: Pick<Runtime, "sendEvent">;
  /** Where webhook tokens are looked up (the runtime's storage). */
  store: Pick<EventStore, "getRun" | "getEvents">;
  /** Require HMAC-SHA256 signatures (see `handleWebhook`). @default none */
  secret?: string;
  /** @default 0 (a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /**
   * Largest body accepted: a larger `Content-Length` is refused before the body is read, and a body
   * that grows past it is cut off (413 `BODY_TOO_LARGE`, connection closed).
   * @default 262144 (256 KB)
   */
  maxBodyBytes?: number;
}

/**
 * A small HTTP server for `POST /hooks/<token>` alone (the dashboard serves the same route).
 * @example
 * import { LocalRuntime, serveWebhooks } from "tsworkflow/local";
 * const runtime = new LocalRuntime();
 * const server = await serveWebhooks({ runtime, store: runtime.storage, port: 8081 });
 * console.log(`webhooks at ${server.url}/hooks/<token>`);
 */
export async function serveWebhooks(
  options: WebhookServerOptions,
): Promise<{ url: string; close(): Promise<void> }> {
  const maxBytes = options.maxBodyBytes ?? DEFAULT_WEBHOOK_MAX_BYTES;
  const server = createServer(async (request, response) => {
    const match = /^\/hooks\/([^/?]+)$/.exec(request.url?.split("?")[0] ?? "");
    const reply = (status: number, body: unknown, close = false) => {
      response.writeHead(status, {
        "content-type": "application/json",
        ...(close ? { connection: "close" } : {}),
      });
      response.end(JSON.stringify(body));
    };
    if (!match || request.method !== "POST") return reply(404, { ok: false, error: "POST /hooks/<token>" });
    // Refused before a byte of the body is kept when it says it is too large; cut off when it grows too large.
    const body =
      Number(request.headers["content-length"] ?? 0) > maxBytes
        ? undefined
        : await readBody(request, maxBytes);
    if (body === undefined) {
      const tooLarge = bodyTooLarge(maxBytes);
      reply(tooLarge.status, tooLarge.body);
      refuseRest(request);
      return;
    }
    try {
      let token: string;
      try {
        token = decodeURIComponent(match[1] as string);
      } catch {
        const unknown = unknownToken();
        return reply(unknown.status, unknown.body);
      }
      const result = await handleWebhook(
        { token, body, headers: lowerCase(request.headers) },
        {
          store: options.store,
          sendEvent: (runId, name, payload, signal) =>
            options.runtime.sendEvent(runId, name, payload, signal),
          maxBodyBytes: maxBytes,
          ...optional("secret", options.secret),
        },
      );
      reply(result.status, result.body);
    } catch (error) {
      reply(500, { ok: false, error: error instanceof Error ? error.message : String(error) });
    }
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve),
  );
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * After a refusal the rest of the body is read and dropped, never kept, for a moment (so that a client
 * still sending receives the answer instead of a connection reset), then the connection is closed.
 */
export function refuseRest(request: IncomingMessage): void {
  request.removeAllListeners("data");
  request.resume();
  setTimeout(() => request.socket.destroy(), 1000).unref();
}

/** The body as text, or undefined once it grows past `maxBytes` (what follows is not kept). */
function readBody(request: IncomingMessage, maxBytes: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        request.off("data", onData);
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    request.on("data", onData);
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function lowerCase(headers: IncomingMessage["headers"]): Record<string, string | undefined> {
  return Object.fromEntries(
    Object.entries(headers).map(([key, value]) => [
      key.toLowerCase(),
      Array.isArray(value) ? value[0] : value,
    ]),
  );
}
