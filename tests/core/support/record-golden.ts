/**
 * Writes the golden histories (tests/fixtures/golden/) from the engine as it is now:
 *   npx tsx tests/core/support/record-golden.ts
 * Run it only when a change to the logs is intended, and say why in the commit.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  GOLDEN_DIR,
  type GoldenHistory,
  goldenPrograms,
  quiet,
  runProgram,
  runScenario,
  SCENARIOS,
} from "./golden.ts";

quiet();
const dir = fileURLToPath(GOLDEN_DIR);
mkdirSync(dir, { recursive: true });
const programs: GoldenHistory[] = [];
for (const [index, program] of goldenPrograms().entries())
  programs.push({ name: `program ${index}`, program, logs: await runProgram(program) });
const scenarios: GoldenHistory[] = [];
for (const scenario of SCENARIOS) scenarios.push({ name: scenario.name, logs: await runScenario(scenario) });
/** One history per line, so that a diff shows which histories changed. */
const lines = (histories: GoldenHistory[]) =>
  `[\n${histories.map((h) => JSON.stringify(h)).join(",\n")}\n]\n`;
writeFileSync(`${dir}programs.json`, lines(programs));
writeFileSync(`${dir}scenarios.json`, lines(scenarios));
console.log(
  `wrote ${programs.length} program histories and ${scenarios.length} scenario histories to ${dir}`,
);
