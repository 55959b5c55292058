/**
 * The engine gives the same event logs as the golden histories recorded in tests/fixtures/golden/ (see
 * support/golden.ts): each recorded program and scenario runs again, once on a warm engine and once with
 * every activation replaying the run from its log, and its normalized logs must be identical.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  GOLDEN_DIR,
  type GoldenHistory,
  PROGRAM_COUNT,
  quiet,
  runProgram,
  runScenario,
  SCENARIOS,
} from "./support/golden.ts";

const read = (file: string) => JSON.parse(readFileSync(new URL(file, GOLDEN_DIR), "utf8")) as GoldenHistory[];
const programs = read("programs.json");
const scenarios = read("scenarios.json");

beforeAll(quiet);

describe("golden histories", () => {
  it("hold every recorded program and scenario", () => {
    expect(programs).toHaveLength(PROGRAM_COUNT);
    expect(scenarios.map((history) => history.name)).toEqual(SCENARIOS.map((scenario) => scenario.name));
  });

  for (const [mode, harness] of [
    ["a warm engine", {}],
    ["an engine that replays every activation from the log", { cacheSize: 0 }],
  ] as const) {
    it(`are what the random programs log on ${mode}`, async () => {
      for (const history of programs) {
        const logs = await runProgram(history.program ?? [], harness);
        expect(logs, history.name).toEqual(history.logs);
      }
    });

    it(`are what the scenarios log on ${mode}`, async () => {
      for (const [index, scenario] of SCENARIOS.entries()) {
        const logs = await runScenario(scenario, harness);
        expect(logs, scenario.name).toEqual(scenarios[index]?.logs);
      }
    });
  }
});
