#!/usr/bin/env node
// The `tsworkflow` command line: the compiled CLI in dist/, on plain Node.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 20 || (major === 20 && minor < 19) || major === 21 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `error: tsworkflow needs Node.js 20.19+ or 22.12+; this is Node.js ${process.version}. Upgrade Node.js.\n`,
  );
  process.exit(1);
}

// In a clone of the repository (its sources beside this file), the CLI runs from those sources through
// tsx, the same modules that the examples and tests import: no build needed, and never two copies of
// the workflow registry. An installed package has no sources, only dist/.
const { existsSync } = await import("node:fs");
const sources = new URL("../lib/cli/main.ts", import.meta.url);
let main = new URL("../dist/lib/cli/main.js", import.meta.url);
if (existsSync(sources)) {
  const { register } = await import("tsx/esm/api");
  register();
  main = sources;
}
const { run } = await import(main.href);
await run(process.argv.slice(2));
