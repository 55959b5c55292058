import { InvalidEventError } from "../../core/errors.ts";
import type { PayloadRef, S3Payloads } from "./s3-payloads.ts";

/** A field moved to S3: `field` of record `index` (an event of a commit, or 0 for an outcome). */
export interface FieldRef extends PayloadRef {
  index: number;
  field: string;
}

/** Fields that identify a record; never payloads, never offloaded. */
const IDENTITY = new Set(["runId", "seq", "timestamp", "type", "stepId", "attempt", "recordedAt", "ok"]);

/**
 * Moves every field larger than the offload threshold to S3 (with `payloads` able to offload), leaving
 * `null` in its place and a reference in `refs`: the references live in an attribute of their own, so
 * no user data can pose as one. Returns the records' JSON and the references.
 */
export async function packFields(
  runId: string,
  records: readonly object[],
  payloads: S3Payloads | undefined,
): Promise<{ json: string; refs: FieldRef[] }> {
  if (!payloads?.offloads) return { json: JSON.stringify(records), refs: [] };
  const refs: FieldRef[] = [];
  const packed = await Promise.all(
    records.map(async (record, index) => {
      let copy: Record<string, unknown> | undefined;
      for (const [field, value] of Object.entries(record)) {
        if (IDENTITY.has(field) || value === null || (typeof value !== "object" && typeof value !== "string"))
          continue;
        const json = JSON.stringify(value);
        if (!payloads.shouldOffload(json)) continue;
        const ref = await payloads.put(runId, json);
        copy ??= { ...record };
        copy[field] = null;
        refs.push({ index, field, ...ref });
      }
      return copy ?? record;
    }),
  );
  return { json: JSON.stringify(packed), refs };
}

/**
 * Puts the offloaded fields back into `records` (parsed from the JSON `packFields` returned), reading
 * each object once. `wanted` limits it to some records (a run document reading one event of a commit).
 */
export async function unpackFields(
  runId: string,
  records: Record<string, unknown>[],
  refs: readonly FieldRef[],
  payloads: () => S3Payloads,
  wanted: (index: number) => boolean = () => true,
): Promise<void> {
  await Promise.all(
    refs
      .filter((ref) => wanted(ref.index))
      .map(async (ref) => {
        const record = records[ref.index];
        if (!record)
          throw new InvalidEventError(
            `A stored payload reference of run ${runId} names record ${ref.index}, which is not there.`,
          );
        record[ref.field] = JSON.parse(await payloads().get(runId, ref));
      }),
  );
}

/** The references stored beside a record, or none. */
export function refsOf(value: unknown): FieldRef[] {
  return typeof value === "string" ? (JSON.parse(value) as FieldRef[]) : [];
}
