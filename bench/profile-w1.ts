/**
 * CPU profile of core W1 (bench/core.ts): `npx tsx bench/profile-w1.ts [rounds]`.
 * Warms up as `npm run bench` does (5 rounds), then profiles `rounds` W1 rounds (default 3) with the V8
 * sampling profiler of this process, prints each round's steps/s and the functions with the most self time.
 * Set PROFILE_OUT=<file.cpuprofile> to keep the profile (Chrome DevTools opens it).
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { w1, w1WithCpu } from "./core.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name and file:line), largest first, as shares of all samples. */
export function selfTimes(profile: Profile, top = 25): { share: number; ms: number; where: string }[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const totals = new Map<string, number>();
  let all = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^file:\/\//, "").replace(`${process.cwd()}/`, "");
    // tsx's output keeps no line numbers worth printing; node's own modules do.
    const at = file.startsWith("node:") ? `${file}:${lineNumber + 1}` : file;
    const where = `${functionName || "(anonymous)"} ${at}`.trim();
    totals.set(where, (totals.get(where) ?? 0) + delta);
    all += delta;
  });
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, micros]) => ({ share: micros / all, ms: micros / 1000, where }));
}

const rounds = Number(process.argv[2] ?? 3);
const profiled = process.env.PROFILE !== "0";
for (let round = 0; round < 5; round += 1) await w1();
const session = new Session();
if (profiled) {
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
}
const results: { stepsPerSecond: number; cpuMicrosPerStep: number }[] = [];
for (let round = 0; round < rounds; round += 1) results.push(await w1WithCpu());
const line = (pick: (r: (typeof results)[number]) => number) =>
  results.map((result) => pick(result).toFixed(0)).join(" / ");
console.log(
  `W1${profiled ? " under the profiler" : ""}: ${line((r) => r.stepsPerSecond)} steps/s, ${line((r) => r.cpuMicrosPerStep)} us CPU per step`,
);
if (!profiled) process.exit(0);
const { profile } = (await session.post("Profiler.stop")) as { profile: Profile };
session.disconnect();
if (process.env.PROFILE_OUT) writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));
for (const { share, ms, where } of selfTimes(profile))
  console.log(`${(share * 100).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(6)} ms  ${where}`);
