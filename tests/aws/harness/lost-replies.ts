/** What {@link loseReplies} saw: every try of every request, and the commands whose reply it lost. */
export interface LostReplies {
  tries: { command: string; input: Record<string, unknown> }[];
  lost: string[];
}

/** The part of an AWS SDK client that a middleware is added to. */
interface MiddlewareClient {
  middlewareStack: {
    add(
      middleware: (
        next: (args: { input: object }) => Promise<unknown>,
        context: { commandName?: string },
      ) => (args: { input: object }) => Promise<unknown>,
      options: { step: "deserialize"; name: string },
    ): void;
  };
}

/**
 * Makes `client` lose on the way back the reply to each request that `lose` picks: the request was carried out,
 * as when a connection drops after AWS answered, and the SDK retries it. `lose` is asked once per request, on
 * its first try (its retries get their replies).
 */
export function loseReplies(
  client: object,
  lose: (command: string, input: Record<string, unknown>) => boolean,
): LostReplies {
  const seen: LostReplies = { tries: [], lost: [] };
  const asked = new WeakSet<object>();
  (client as MiddlewareClient).middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const command = context.commandName ?? "";
      const input = args.input as Record<string, unknown>;
      seen.tries.push({ command, input });
      if (!asked.has(input)) {
        asked.add(input);
        if (lose(command, input)) {
          seen.lost.push(command);
          throw Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
        }
      }
      return result;
    },
    { step: "deserialize", name: "loseReplies" },
  );
  return seen;
}

/** Write requests whose reply is lost on the way back (the request was carried out), which the SDK retries. */
const WRITES = new Set([
  "PutItemCommand",
  "UpdateItemCommand",
  "TransactWriteItemsCommand",
  "SendMessageCommand",
  "SendMessageBatchCommand",
]);

/** Loses the reply of every `every`-th write request of `client` (its first try only): the commands hit. */
export function loseEveryNthWriteReply(client: object, every: number): string[] {
  let writes = 0;
  return loseReplies(client, (command) => WRITES.has(command) && ++writes % every === 0).lost;
}
