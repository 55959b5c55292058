import { pathToFileURL } from "node:url";
import { ConfigurationError, MissingDependencyError } from "./errors.ts";
import { missingPackage } from "./optional-dependency.ts";

const TYPESCRIPT = /\.(?:[cm]?ts|tsx)$/;

let typeScriptLoader: Promise<void> | undefined;

/**
 * Imports the app's workflows module (`--workflows`, `runWorker`), which registers its workflows.
 * A `.js`/`.mjs`/`.cjs` module is imported as it is. A TypeScript module is imported through tsx
 * (an optional peer, loaded only then), or through Node's own type stripping where Node has it (22.18+).
 * Resolves with the module's exports.
 * @throws MissingDependencyError for a TypeScript module when neither is available
 * @throws ConfigurationError naming the module when importing it throws (its top-level code, or a module it
 *   imports), with that error as `cause`
 */
export async function importWorkflowsModule(path: string): Promise<Record<string, unknown>> {
  if (TYPESCRIPT.test(path)) {
    typeScriptLoader ??= registerTypeScriptLoader(path);
    await typeScriptLoader;
  }
  try {
    return await import(pathToFileURL(path).href);
  } catch (error) {
    throw loadFailure(path, error);
  }
}

/** An error thrown while importing the module, as an error that names the module. */
function loadFailure(path: string, error: unknown): ConfigurationError {
  const thrown = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const failure = new ConfigurationError(`Loading ${path} failed: ${thrown}`, { cause: error });
  // Where the module threw is what helps, not where the import was awaited.
  const frames =
    error instanceof Error ? error.stack?.split("\n").filter((line) => /^\s+at /.test(line)) : [];
  if (frames?.length) failure.stack = [`${failure.name}: ${failure.message}`, ...frames].join("\n");
  return failure;
}

async function registerTypeScriptLoader(path: string): Promise<void> {
  try {
    const { register } = await import("tsx/esm/api");
    register();
  } catch (error) {
    if (missingPackage(error) !== "tsx") throw error;
    if ((process.features as { typescript?: unknown }).typescript) return;
    throw new MissingDependencyError(`Loading the TypeScript module ${path}`, ["tsx"], {
      cause: error,
      instead: "pass the compiled .js module",
    });
  }
}
