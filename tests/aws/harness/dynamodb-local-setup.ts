import type { TestProject } from "vitest/node";
import { type DynamoDBLocal, startDynamoDBLocal } from "./dynamodb-local.ts";

/** Where the run's one DynamoDB Local is kept, with how many folders use it: see {@link setup}. */
const RUN_DYNAMODB_LOCAL = Symbol.for("tsworkflow.tests.dynamodbLocal");
type Shared = { started: Promise<DynamoDBLocal>; folders: number };
const runState = globalThis as { [RUN_DYNAMODB_LOCAL]?: Shared };

/**
 * vitest's global set-up of a test folder whose files share one DynamoDB Local (see vitest.config.ts). The
 * folders of a run share it too: the first folder's set-up starts it (a JVM takes seconds to start), the
 * others find it, and the last teardown, after the whole run, stops it. vitest loads each folder's set-up
 * as a module of its own in its main process, hence globalThis. The files reach it through
 * `folderDynamoDBLocal()`, each with tables of its own.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const shared = runState[RUN_DYNAMODB_LOCAL] ?? { started: startDynamoDBLocal(), folders: 0 };
  runState[RUN_DYNAMODB_LOCAL] = shared;
  shared.folders += 1;
  const dynamo = await shared.started;
  project.provide("sharedDynamoDBLocalPort", dynamo.port);
  return async () => {
    shared.folders -= 1;
    if (shared.folders > 0) return;
    delete runState[RUN_DYNAMODB_LOCAL];
    await dynamo.stop();
  };
}
