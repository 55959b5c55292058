import type { TestProject } from "vitest/node";
import { startDynamoDBLocal } from "./dynamodb-local.ts";

/**
 * vitest's global set-up of a test folder whose files share one DynamoDB Local (see vitest.config.ts):
 * started once before the folder's first file, stopped after the whole run. The files reach it through
 * `folderDynamoDBLocal()`, each with tables of its own.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dynamo = await startDynamoDBLocal();
  project.provide("sharedDynamoDBLocalPort", dynamo.port);
  return () => dynamo.stop();
}
