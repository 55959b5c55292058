import type { RunPage, RunQuery } from "../../ports/event-store.ts";
import { DynamoDBEngineStore, type DynamoDBStorageOptions } from "./dynamodb-engine-store.ts";
import { mappingErrors } from "./dynamodb-errors.ts";
import { listRunPage } from "./run-listing.ts";

export type { DynamoDBStorageOptions } from "./dynamodb-engine-store.ts";

/**
 * The DynamoDB event store (see `DynamoDBEngineStore`), with run listing and DynamoDB's errors mapped to
 * tsworkflow errors (`mapDynamoDBError`): the store of the client and the CLI. The Lambda handlers use
 * `DynamoDBEngineStore`, which leaves this code out of their bundle.
 *
 * @example
 * import { DynamoDBStorage } from "tsworkflow/aws";
 * const store = new DynamoDBStorage({ tableName: process.env.TSWORKFLOW_TABLE_NAME as string });
 * const { runs } = await store.listRuns({ status: "failed", limit: 20 });
 */
export class DynamoDBStorage extends DynamoDBEngineStore {
  constructor(options: DynamoDBStorageOptions) {
    super(options);
    // Where a table name is typed by hand (the client, the CLI), a missing table says how to create it.
    // The handlers' store, on the construct's own table, leaves this out of their bundle.
    mappingErrors(this.context.documents, options.tableName);
  }

  /** One page of runs, newest first; `nextCursor` leads to the next page. */
  override listRuns(query: RunQuery = {}): Promise<RunPage> {
    return listRunPage(this.context, query);
  }
}
