import { MissingDependencyError } from "./errors.ts";

/**
 * Imports a part of tsworkflow that needs optional peer dependencies (Redis mode, DynamoDB, the
 * dashboard...). When the import fails because one of `packages` is not installed, the error says
 * which packages to install instead of Node's "Cannot find package" from deep inside.
 * @throws MissingDependencyError when one of `packages` cannot be found
 */
export async function importOptional<T>(
  load: () => Promise<T>,
  feature: string,
  packages: readonly string[],
): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const missing = missingPackage(error);
    if (missing !== undefined && packages.includes(missing))
      throw new MissingDependencyError(feature, packages, { cause: error });
    throw error;
  }
}

/** The package that a failed import could not find (Node's `ERR_MODULE_NOT_FOUND`), if that is why it failed. */
export function missingPackage(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code } = error as { code?: unknown };
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") return undefined;
  const specifier = /Cannot find (?:package|module) '([^']+)'/.exec(error.message)?.[1];
  if (specifier === undefined || specifier.startsWith(".") || specifier.startsWith("/")) return undefined;
  const parts = specifier.split("/");
  return (specifier.startsWith("@") ? parts.slice(0, 2) : parts.slice(0, 1)).join("/");
}

/**
 * `require(name)` of an optional peer, for code that cannot wait for `import()` (a module's top level, a
 * function that returns at once); a missing one of `packages` is a `MissingDependencyError` naming them all.
 * @param require - `createRequire(import.meta.url)` of the calling module
 * @throws MissingDependencyError when one of `packages` cannot be found
 */
export function requireOptional<T>(
  require: (name: string) => unknown,
  name: string,
  feature: string,
  packages: readonly string[],
): T {
  try {
    return require(name) as T;
  } catch (error) {
    if (packages.includes(missingPackage(error) ?? ""))
      throw new MissingDependencyError(feature, packages, { cause: error });
    throw error;
  }
}
