/**
 * Where core W1's time goes outside the JavaScript profile (bench/profile-w1.ts has that):
 * `npx tsx bench/w1-costs.ts [rounds]`. Warms up as `npm run bench` does (5 rounds), then runs `rounds` W1
 * rounds (default 5) and prints, per step: the file system calls made through `node:fs` (counted by wrapping
 * them), and the CPU time of the main thread and of the process's other threads (libuv's pool, which runs the
 * fdatasyncs, and V8's helpers), user and system, from /proc/self/task (Linux). The bench's removal of each
 * round's directory is included in the thread times.
 */
import fs, { readdirSync, readFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";

const COUNTED = [
  "openSync",
  "closeSync",
  "writeSync",
  "fdatasync",
  "fsync",
  "readFileSync",
  "statSync",
] as const;
const calls = new Map<string, number>();
const fsFunctions = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
for (const name of COUNTED) {
  const original = fsFunctions[name] as (...args: unknown[]) => unknown;
  fsFunctions[name] = function counted(this: unknown, ...args: unknown[]) {
    calls.set(name, (calls.get(name) ?? 0) + 1);
    return original.apply(this, args);
  };
}
// The ESM named exports (`import { writeSync } from "node:fs"`) follow the patched default export.
syncBuiltinESMExports();
const { w1 } = await import("./core.ts");

/** CPU ms (user, system) of each thread of this process, by thread id. */
function threadTimes(): Map<string, { user: number; system: number }> {
  const times = new Map<string, { user: number; system: number }>();
  for (const tid of readdirSync("/proc/self/task")) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    times.set(tid, { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 });
  }
  return times;
}

const rounds = Number(process.argv[2] ?? 5);
for (let round = 0; round < 5; round += 1) await w1();
calls.clear();
const before = threadTimes();
const rates: number[] = [];
for (let round = 0; round < rounds; round += 1) rates.push(await w1());
const after = threadTimes();
const steps = rounds * 2000;
const perStep = (ms: number) => ((ms * 1000) / steps).toFixed(1);
const main = { user: 0, system: 0 };
const others = { user: 0, system: 0 };
for (const [tid, now] of after) {
  const then = before.get(tid) ?? { user: 0, system: 0 };
  const into = tid === String(process.pid) ? main : others;
  into.user += now.user - then.user;
  into.system += now.system - then.system;
}
console.log(`W1: ${rates.map((rate) => rate.toFixed(0)).join(" / ")} steps/s`);
console.log(
  `file system calls per step: ${[...calls].map(([name, count]) => `${name} ${(count / steps).toFixed(2)}`).join(", ")}`,
);
console.log(`main thread: ${perStep(main.user)} us user + ${perStep(main.system)} us system per step`);
console.log(`other threads: ${perStep(others.user)} us user + ${perStep(others.system)} us system per step`);
process.exit(0);
