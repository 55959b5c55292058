#!/usr/bin/env node
// The package ships TypeScript sources: tsx compiles them on the fly for the CLI.
let register;
try {
  ({ register } = await import("tsx/esm/api"));
} catch {
  process.stderr.write(
    "error: the tsworkflow CLI needs tsx to run its TypeScript sources. Install it: npm install tsx\n",
  );
  process.exit(1);
}
register();
const { run } = await import("../lib/cli/main.ts");
await run(process.argv.slice(2));
