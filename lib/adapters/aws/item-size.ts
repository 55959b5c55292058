import { PayloadTooLargeError } from "../../core/errors.ts";
import { byteLength, DYNAMODB_ITEM_LIMIT_BYTES } from "./limits.ts";

/**
 * The size DynamoDB counts for an item (names and values, as its documentation describes): strings
 * and binaries by their bytes, numbers up to 21 bytes, booleans and nulls 1 byte, lists and maps 3
 * bytes plus 1 byte per element. An upper bound: the guard never lets a larger item through.
 */
export function itemSize(item: Record<string, unknown>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    size += byteLength(name) + valueSize(value);
  }
  return size;
}

function valueSize(value: unknown): number {
  if (typeof value === "string") return byteLength(value);
  if (typeof value === "number" || typeof value === "bigint") return 21;
  if (typeof value === "boolean" || value === null) return 1;
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) return [...value].reduce((sum, element) => sum + valueSize(element), 0);
  if (Array.isArray(value))
    return 3 + value.reduce((sum: number, element) => sum + 1 + valueSize(element), 0);
  if (typeof value === "object") {
    let size = 3;
    for (const [name, element] of Object.entries(value as Record<string, unknown>)) {
      if (element !== undefined) size += 1 + byteLength(name) + valueSize(element);
    }
    return size;
  }
  return 0;
}

/**
 * The guard before every write: an item DynamoDB would refuse (over 400 KB) fails here, once, with a
 * clear error instead of a `ValidationException` that SQS would redeliver until the DLQ.
 * @throws PayloadTooLargeError naming what the item holds
 */
export function assertItemFits(item: Record<string, unknown>, what: string): void {
  const size = itemSize(item);
  if (size > DYNAMODB_ITEM_LIMIT_BYTES) throw new PayloadTooLargeError(what, size, DYNAMODB_ITEM_LIMIT_BYTES);
}
