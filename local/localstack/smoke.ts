/**
 * `npm run localstack:smoke`: starts the onboarding workflow on the stack `npm run localstack:deploy`
 * deployed to LocalStack (through the client, as another Lambda would), waits for it to complete and
 * prints its events. Exits 1 when the run does not complete in time.
 *
 * The run sleeps 5 s between its two emails: a short timer, delivered as a delayed SQS message.
 */

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { onboarding } from "../../examples/onboarding.ts";
import { DynamoDBStorage } from "../../lib/adapters/aws/dynamodb-storage.ts";
import { createClient } from "../../lib/aws/client.ts";
import type { WorkflowEvent } from "../../lib/core/events.ts";
import {
  checkLocalStack,
  clientConfigFromOutputs,
  localStackSettings,
  readStackOutputs,
} from "./settings.ts";

const TIMEOUT_MS = Number(process.env.SMOKE_TIMEOUT_MS ?? 180_000);

// LocalStack takes any credentials; the SDK needs some.
process.env.AWS_ACCESS_KEY_ID ??= "test";
process.env.AWS_SECRET_ACCESS_KEY ??= "test";

const describeEvent = (event: WorkflowEvent): string => {
  const { runId: _runId, seq, timestamp, type, ...rest } = event as WorkflowEvent & Record<string, unknown>;
  return `${String(seq).padStart(3)} ${timestamp} ${type} ${JSON.stringify(rest)}`;
};

async function main(): Promise<void> {
  const settings = localStackSettings();
  await checkLocalStack(settings.endpoint);
  const config = clientConfigFromOutputs(readStackOutputs(settings), settings);
  const client = createClient(config);
  const dynamodb = new DynamoDBClient({ region: config.region, endpoint: settings.endpoint });
  const store = new DynamoDBStorage({ client: dynamodb, tableName: config.tableName });

  const userId = `smoke-${Date.now()}`;
  const runId = await client.start(onboarding, [userId, "5s"]);
  console.log(`started onboarding ${runId} for ${userId} (table ${config.tableName})`);

  const deadline = Date.now() + TIMEOUT_MS;
  let status = "";
  for (;;) {
    const run = await client.getRun(runId);
    if (run && run.status !== status) {
      status = run.status;
      console.log(`  ${new Date().toISOString()} ${status}`);
    }
    if (run && ["completed", "failed", "cancelled"].includes(run.status)) break;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }

  console.log("events:");
  for (const event of await store.getEvents(runId)) console.log(`  ${describeEvent(event)}`);

  await client.close();
  dynamodb.destroy();
  if (status !== "completed") {
    const what =
      status === "failed" || status === "cancelled"
        ? `The run ended ${status} (its events are above).`
        : `The run is ${status || "not found"} after ${TIMEOUT_MS / 1000} s.`;
    console.error(
      `${what} Check the functions' logs: docker compose -f local/localstack/docker-compose.yml logs localstack`,
    );
    process.exit(1);
  }
  console.log("smoke test passed: onboarding completed on LocalStack");
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
