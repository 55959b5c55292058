import type { RunPage, RunQuery } from "../../ports/event-store.ts";
import { DynamoDBEngineStore } from "./dynamodb-engine-store.ts";
import { listRunPage } from "./run-listing.ts";

export type { DynamoDBStorageOptions } from "./dynamodb-engine-store.ts";

/**
 * The DynamoDB event store (see `DynamoDBEngineStore`), with run listing: the store of the client and the
 * CLI. The Lambda handlers use `DynamoDBEngineStore`, which leaves the listing's code out of their bundle.
 *
 * @example
 * import { DynamoDBStorage } from "tsworkflow/aws";
 * const store = new DynamoDBStorage({ tableName: process.env.TSWORKFLOW_TABLE_NAME as string });
 * const { runs } = await store.listRuns({ status: "failed", limit: 20 });
 */
export class DynamoDBStorage extends DynamoDBEngineStore {
  /** One page of runs, newest first; `nextCursor` leads to the next page. */
  override listRuns(query: RunQuery = {}): Promise<RunPage> {
    return listRunPage(this.context, query);
  }
}
