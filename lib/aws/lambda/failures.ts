import { ChangeMessageVisibilityCommand } from "@aws-sdk/client-sqs";
import { MAX_SQS_DELAY_SECONDS } from "../../adapters/aws/limits.ts";
import { InvalidMessageError } from "../../core/errors.ts";
import { getLogger } from "../../core/logger.ts";
import type { AwsRuntime } from "../../runtimes/aws.ts";
import type { SqsRecord } from "./lambda-types.ts";

/** What the SQS handlers do with a record that failed: poison, code not deployed yet, or retry. */

export function errorDetails(error: unknown): Record<string, unknown> {
  return error instanceof Error
    ? { error: { name: error.name, message: error.message, stack: error.stack } }
    : { error: String(error) };
}

/** A message that can never succeed (not JSON, not ours): it goes to the DLQ at once, kept for a look. */
export function isPoison(error: unknown): boolean {
  return error instanceof InvalidMessageError;
}

/**
 * Deploy backoff: how long an activation of a workflow this code does not know waits before SQS hands
 * it out again (1, 2, 4, 8 minutes... by receive): during a deploy, the function that knows it is
 * usually live within minutes. After `maxReceiveCount` receives it is in the DLQ, never dropped.
 */
export function unknownWorkflowBackoffSeconds(receiveCount: number, baseSeconds = 60): number {
  return Math.min(12 * 60 * 60, baseSeconds * 2 ** Math.max(0, receiveCount - 1));
}

/**
 * Deploy backoff of a step this code does not know: the task is put back on the step queue with a
 * delay of 2, 4, 8... seconds, at most 15 minutes, up to {@link MAX_STEP_DEFERRALS} times (about a day);
 * then it fails into the DLQ.
 */
export function unknownStepDelaySeconds(deferrals: number): number {
  return Math.min(MAX_SQS_DELAY_SECONDS, 2 ** Math.min(10, deferrals + 1));
}

/** About 24 hours of deferrals (nine short ones, then one every 15 minutes). */
export const MAX_STEP_DEFERRALS = 100;

/** Sets how long a failed record stays invisible (0: handed out again at once, toward its DLQ). */
export async function holdBack(
  runtime: AwsRuntime,
  queueUrl: string,
  record: SqsRecord,
  seconds: number,
): Promise<void> {
  try {
    await runtime.clients.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  } catch (error) {
    // The record fails either way; it comes back after the queue's visibility timeout instead.
    getLogger().warn("could not change a failed record's visibility", {
      messageId: record.messageId,
      ...errorDetails(error),
    });
  }
}
