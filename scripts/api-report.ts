/**
 * The API report of every entry point (etc/api/*.api.md, committed): `npm run api:check` (in `npm test`)
 * fails when the public surface in dist/ differs from the report, `npm run api:update` rewrites the
 * reports after a change made on purpose. Runs API Extractor on the built .d.ts files (`npm run build`).
 */
import { fileURLToPath } from "node:url";
import { Extractor, ExtractorConfig, ExtractorLogLevel } from "@microsoft/api-extractor";

const root = fileURLToPath(new URL("..", import.meta.url));
const update = process.argv.includes("--update");

/** Each entry of package.json's `exports` and the report it gets. */
const ENTRIES = {
  tsworkflow: "dist/lib/index.d.ts",
  "tsworkflow-engine": "dist/lib/engine/index.d.ts",
  "tsworkflow-local": "dist/lib/local/index.d.ts",
  "tsworkflow-redis": "dist/lib/redis/index.d.ts",
  "tsworkflow-aws": "dist/lib/aws/index.d.ts",
  "tsworkflow-testing": "dist/lib/testing/index.d.ts",
  "tsworkflow-cli": "dist/lib/cli/index.d.ts",
  "tsworkflow-cdk": "dist/infra/index.d.ts",
};

let changed = 0;
for (const [report, entry] of Object.entries(ENTRIES)) {
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: root,
      mainEntryPointFilePath: `<projectFolder>/${entry}`,
      compiler: {
        overrideTsconfig: {
          compilerOptions: {
            target: "ES2023",
            lib: ["ES2023"],
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            skipLibCheck: true,
            types: ["node"],
          },
          files: [`${root}/${entry}`],
        },
      },
      apiReport: {
        enabled: true,
        reportFileName: report,
        reportFolder: "<projectFolder>/etc/api/",
        reportTempFolder: "<projectFolder>/node_modules/.cache/api-extractor/",
      },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
        extractorMessageReporting: {
          default: { logLevel: ExtractorLogLevel.Warning },
          // Release tags (@public, @beta) are not used: every export of an entry is public.
          "ae-missing-release-tag": { logLevel: ExtractorLogLevel.None },
          // A type that another entry exports (EventStore in tsworkflow/engine) is noted in the report.
          "ae-forgotten-export": { logLevel: ExtractorLogLevel.None, addToApiReportFile: true },
          "ae-undocumented": { logLevel: ExtractorLogLevel.None },
          "ae-unresolved-link": { logLevel: ExtractorLogLevel.None },
        },
        // The TSDoc comments use @default and @example freely (TypeDoc style), not strict TSDoc.
        tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
      },
    },
    configObjectFullPath: undefined,
    packageJsonFullPath: `${root}/package.json`,
  });
  const result = Extractor.invoke(config, { localBuild: update, showVerboseMessages: false });
  if (result.apiReportChanged) {
    changed += 1;
    console.error(
      update
        ? `etc/api/${report}.api.md updated`
        : `etc/api/${report}.api.md differs from ${entry}: the public API changed. If on purpose, run npm run api:update and commit the report.`,
    );
  }
  if (!result.succeeded && !result.apiReportChanged) {
    console.error(`API Extractor failed on ${entry} (${result.errorCount} errors)`);
    process.exitCode = 1;
  }
}
if (changed > 0 && !update) process.exitCode = 1;
