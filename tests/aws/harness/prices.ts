import type { RequestCounts } from "./request-counter.ts";

/**
 * AWS list prices (us-east-1, on demand, as published in December 2026), in dollars per unit, for the cost
 * model (docs/aws.md) and `BENCH_ONLY=aws`.
 */
export const PRICES = {
  dynamodbWriteUnit: 0.625 / 1e6,
  dynamodbReadUnit: 0.125 / 1e6,
  sqsStandardRequest: 0.4 / 1e6,
  sqsFifoRequest: 0.5 / 1e6,
  lambdaRequest: 0.2 / 1e6,
  /** arm64 */
  lambdaGbSecond: 0.0000133334,
  schedulerInvocation: 1 / 1e6,
  s3Put: 0.005 / 1e3,
  s3Get: 0.0004 / 1e3,
};

/** What a workload used, end to end. */
export interface Usage {
  /** Requests the functions sent, by `<service>.<operation>`, and DynamoDB capacity units. */
  counts: RequestCounts;
  /** Receive and delete requests of the event source mappings (batches that carried messages). */
  pollRequests: { fifo: number; standard: number };
  lambdaInvocations: number;
  /** Total Lambda run time, ms. */
  lambdaMs: number;
  /** Lambda memory, MB (the construct's default is 512). */
  memoryMb: number;
  schedulerInvocations: number;
}

/**
 * Dollars for `usage` at list prices. A strongly consistent read that finds nothing is billed 1 RRU on AWS
 * while DynamoDB Local reports 0, and a conditional write that fails at least 1 WRU while DynamoDB Local
 * reports nothing: those are added.
 */
export function dollarsOf(usage: Usage): number {
  const { counts } = usage;
  const requests = (prefix: string) =>
    Object.entries(counts.requests)
      .filter(([key]) => key.startsWith(prefix))
      .reduce((sum, [, count]) => sum + count, 0);
  const fifoSends = requests("sqs.SendMessage") - counts.standardSends;
  return (
    (counts.writeUnits + counts.failedWrites) * PRICES.dynamodbWriteUnit +
    (counts.readUnits + counts.emptyReadUnits) * PRICES.dynamodbReadUnit +
    counts.standardSends * PRICES.sqsStandardRequest +
    fifoSends * PRICES.sqsFifoRequest +
    usage.pollRequests.fifo * PRICES.sqsFifoRequest +
    usage.pollRequests.standard * PRICES.sqsStandardRequest +
    usage.lambdaInvocations * PRICES.lambdaRequest +
    (usage.lambdaMs / 1000) * (usage.memoryMb / 1024) * PRICES.lambdaGbSecond +
    usage.schedulerInvocations * PRICES.schedulerInvocation +
    requests("s3.PutObject") * PRICES.s3Put +
    requests("s3.GetObject") * PRICES.s3Get
  );
}
