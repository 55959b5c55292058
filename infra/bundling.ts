import { createRequire } from "node:module";
import { aws_lambda_nodejs as nodejs } from "aws-cdk-lib";

/**
 * The esbuild settings of the functions. Exported so that tests bundle the entry exactly as the
 * construct does.
 */
export const BUNDLING: Readonly<nodejs.BundlingOptions> = {
  // Never Docker: the esbuild in node_modules bundles (the constructor checks that it is installed).
  forceDockerBundling: false,
  format: nodejs.OutputFormat.ESM,
  // No `target`: NodejsFunction derives it from the function's runtime (`node24` on nodejs24.x).
  mainFields: ["module", "main"],
  // The Lambda runtime ships the AWS SDK v3: smaller bundles, faster cold starts.
  externalModules: ["@aws-sdk/*"],
  sourceMap: true,
  sourcesContent: false,
  // Stack traces read through the source map (NODE_OPTIONS=--enable-source-maps), so minified names
  // cost nothing there; keepNames would add about 5 % to every bundle.
  minify: true,
  // Comments a package marks to keep (licenses, `@preserve`) go to index.mjs.LEGAL.txt beside the bundle,
  // still shipped, instead of the end of the code that every cold start reads.
  esbuildArgs: { "--legal-comments": "external" },
  // Bundled CommonJS dependencies may call require() on Node built-ins, which ESM lacks.
  banner: 'import{createRequire as __twRequire}from"node:module";const require=__twRequire(import.meta.url);',
};

/**
 * NodejsFunction silently falls back to Docker when it cannot find esbuild; the kit bundles locally
 * only, so a missing esbuild is an error here.
 */
export function assertLocalEsbuild(fail: (message: string) => never): void {
  const require = createRequire(import.meta.url);
  for (const from of [process.cwd(), import.meta.dirname]) {
    try {
      require.resolve("esbuild", { paths: [from] });
      return;
    } catch {
      // try the next place
    }
  }
  fail(
    "esbuild is not installed; the functions are bundled with the local esbuild, never Docker. Run: npm install --save-dev esbuild",
  );
}
