import type { SQSClient } from "@aws-sdk/client-sqs";

/**
 * Makes `client` send every message twice (FIFO copies with a new deduplication id, so that SQS keeps both),
 * as when a sender retries a send whose reply it lost.
 */
export function duplicateEverySend(client: SQSClient): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const name = (context as { commandName?: string }).commandName;
      if (name === "SendMessageCommand" || name === "SendMessageBatchCommand") {
        const input = structuredClone(args.input) as {
          MessageDeduplicationId?: string;
          Entries?: { MessageDeduplicationId?: string }[];
        };
        if (input.MessageDeduplicationId)
          input.MessageDeduplicationId = `${input.MessageDeduplicationId}-dup`.slice(-128);
        for (const entry of input.Entries ?? []) {
          if (entry.MessageDeduplicationId)
            entry.MessageDeduplicationId = `${entry.MessageDeduplicationId}-dup`.slice(-128);
        }
        await next({ ...args, input: input as typeof args.input });
      }
      return result;
    },
    { step: "initialize", name: "duplicateEverySend" },
  );
}
