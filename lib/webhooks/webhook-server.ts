import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { Runtime } from "../core/runtime.ts";
import type { EventStore } from "../ports/event-store.ts";
import { handleWebhook } from "./handle-webhook.ts";

/** Options of {@link serveWebhooks}. */
export interface WebhookServerOptions {
  /** Where runs are resumed. */
  runtime: Pick<Runtime, "sendEvent">;
  /** Where webhook tokens are looked up (the runtime's storage). */
  store: EventStore;
  /** Require HMAC-SHA256 signatures (see `handleWebhook`). @default none */
  secret?: string;
  /** @default 0 (a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
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
  const server = createServer(async (request, response) => {
    const match = /^\/hooks\/([^/?]+)$/.exec(request.url?.split("?")[0] ?? "");
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    if (!match || request.method !== "POST") return reply(404, { ok: false, error: "POST /hooks/<token>" });
    try {
      const result = await handleWebhook(
        {
          token: decodeURIComponent(match[1] as string),
          body: await readBody(request),
          headers: lowerCase(request.headers),
        },
        {
          store: options.store,
          sendEvent: (runId, name, payload, signal) =>
            options.runtime.sendEvent(runId, name, payload, signal),
          ...(options.secret === undefined ? {} : { secret: options.secret }),
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
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
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
