/**
 * `{ [key]: value }`, or `{}` when `value` is undefined: an optional property that is absent rather than
 * set to undefined (`exactOptionalPropertyTypes`), spread into an object literal.
 * @example
 * const run = { runId, ...optional("idempotencyKey", options.idempotencyKey) };
 */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}
