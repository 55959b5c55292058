import { QueryCommand } from "./dynamodb-sdk.ts";
import { commitSk, runPk } from "./keys.ts";
import { getDocument } from "./queries.ts";
import type { RunFacts } from "./run-facts.ts";
import type { StoreContext } from "./store-context.ts";

/**
 * True when a commit ended at `version`, so that `COMMIT#<version + 1>` is where the next commit must
 * go: then the conditional put alone decides who wins. Known boundaries need no read; otherwise the
 * run document's version, or (when the document lags the log after a crash) the commit holding
 * `version`, says.
 */
export async function isBoundary(
  context: StoreContext,
  facts: RunFacts,
  runId: string,
  version: number,
): Promise<boolean> {
  if (facts.get(runId)?.boundaries.has(version)) return true;
  const document = await getDocument(context, runId, "version");
  if (!document) return false;
  if (document.version === version) {
    facts.learn(runId, { boundary: version, documentVersion: version });
    return true;
  }
  const { Items: items = [] } = await context.documents.send(
    new QueryCommand({
      TableName: context.tableName,
      KeyConditionExpression: "pk = :pk AND sk BETWEEN :first AND :upTo",
      ExpressionAttributeValues: { ":pk": runPk(runId), ":first": commitSk(1), ":upTo": commitSk(version) },
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
      ProjectionExpression: "#end",
      ExpressionAttributeNames: { "#end": "end" },
    }),
  );
  const ended = items[0]?.end === version;
  if (ended) facts.learn(runId, { boundary: version });
  return ended;
}

/** The run document version this process knows, reading it when unknown. */
export async function knownDocumentVersion(
  context: StoreContext,
  facts: RunFacts,
  runId: string,
): Promise<number | undefined> {
  const known = facts.get(runId)?.documentVersion;
  if (known !== undefined) return known;
  return (await getDocument(context, runId, "version"))?.version as number | undefined;
}
