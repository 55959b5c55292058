import { pathToFileURL } from "node:url";
import { MissingDependencyError } from "./errors.ts";
import { missingPackage } from "./optional-dependency.ts";

const TYPESCRIPT = /\.(?:[cm]?ts|tsx)$/;

let typeScriptLoader: Promise<void> | undefined;

/**
 * Imports the app's workflows module (`--workflows`, `runWorker`), which registers its workflows.
 * A `.js`/`.mjs`/`.cjs` module is imported as it is. A TypeScript module is imported through tsx
 * (an optional peer, loaded only then), or through Node's own type stripping where Node has it (22.18+).
 * Resolves with the module's exports.
 * @throws MissingDependencyError for a TypeScript module when neither is available
 */
export async function importWorkflowsModule(path: string): Promise<Record<string, unknown>> {
  if (TYPESCRIPT.test(path)) {
    typeScriptLoader ??= registerTypeScriptLoader(path);
    await typeScriptLoader;
  }
  return import(pathToFileURL(path).href);
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
