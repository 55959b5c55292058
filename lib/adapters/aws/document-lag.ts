/**
 * How far a running run's document may fall behind its log, in the run's time: a commit that leaves a
 * running run running does not update the document while the document's `updatedAt` is less than this
 * before the commit (see `DynamoDBEngineStore.commit`). The construct adds it to the sweeper's stale time.
 */
export const DOCUMENT_LAG_MS = 5_000;
