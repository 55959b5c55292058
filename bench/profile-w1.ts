/**
 * CPU profile of core W1 (bench/core.ts): `npx tsx bench/profile-w1.ts [rounds]`.
 * Warms up as `npm run bench` does (5 rounds), then profiles `rounds` W1 rounds (default 3) with the V8
 * sampling profiler of this process, prints each round's steps/s and CPU time per step, and the functions with
 * the most self time (per step of W1; the bench's clean-up between rounds and idle time left out).
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

/** Functions whose samples are the bench's own, not W1's: the removal of each round's directory, the profiler. */
const NOT_W1 = new Set(["rmSync", "post"]);

/**
 * Self time per function (name and file), largest first: its share of W1's samples and its microseconds per
 * step. Samples under `NOT_W1` are left out, and so are idle ones (the process waiting for the disk).
 */
export function selfTimes(
  profile: Profile,
  steps: number,
  top = 25,
): { share: number; microsPerStep: number; where: string }[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const excluded = (id: number): boolean => {
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at))
      if (NOT_W1.has(byId.get(at)?.callFrame.functionName ?? "")) return true;
    return false;
  };
  const totals = new Map<string, number>();
  let all = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === "(idle)" || excluded(id)) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^file:\/\//, "").replace(`${process.cwd()}/`, "");
    // tsx's output keeps no line numbers worth printing; node's own modules do.
    const at = file.startsWith("node:") ? `${file}:${lineNumber + 1}` : file;
    const where = `${functionName || "(anonymous)"} ${at}`.trim();
    totals.set(where, (totals.get(where) ?? 0) + delta);
    all += delta;
  });
  const rows = [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, micros]) => ({ share: micros / all, microsPerStep: micros / steps, where }));
  return [{ share: 1, microsPerStep: all / steps, where: "(all of W1, idle left out)" }, ...rows];
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
for (const { share, microsPerStep, where } of selfTimes(profile, rounds * 2000))
  console.log(
    `${(share * 100).toFixed(1).padStart(5)} %  ${microsPerStep.toFixed(1).padStart(6)} us/step  ${where}`,
  );
