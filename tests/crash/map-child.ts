/**
 * A child process for the map crash test. `start <dir> <items> <concurrency> <killAfter>` starts a run
 * (the test finds it in the directory) that maps a step over `items` items and SIGKILLs its own process when the `killAfter`-th step execution
 * begins; `resume <dir> <runId>` opens the same directory, lets the runtime resume the run, and prints it
 * as JSON. Every step execution appends `start|end <item> <pid>` to `<dir>/copies.log`, so the test can
 * count the copies that ran at once in each process.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { configure, map, shutdown, start, step, waitForRun, workflow } from "tsworkflow";

const [command, dir, ...rest] = process.argv.slice(2) as [string, string, ...string[]];
const copies = join(dir, "copies.log");
const killAfter = command === "start" ? Number(rest[2]) : Number.POSITIVE_INFINITY;

const work = step("map_crash_work", async (item: number) => {
  appendFileSync(copies, `start ${item} ${process.pid}\n`);
  const executions = readFileSync(copies, "utf8")
    .split("\n")
    .filter((line) => line.startsWith("start")).length;
  if (executions >= killAfter) process.kill(process.pid, "SIGKILL");
  await new Promise((resolve) => setTimeout(resolve, (item * 7) % 11));
  appendFileSync(copies, `end ${item} ${process.pid}\n`);
  return item * 10;
});

export const mapCrash = workflow("map_crash", async (count: number, concurrency: number) =>
  map(
    Array.from({ length: count }, (_, index) => index),
    (item) => work(item),
    { concurrency },
  ),
);

configure({ dir });
if (command === "start") {
  await start(mapCrash, [Number(rest[0]), Number(rest[1])]);
  // Stay alive until a step kills this process.
  setInterval(() => {}, 1000);
} else {
  const run = await waitForRun(rest[0] as string, { timeoutMs: 30_000 });
  console.log(JSON.stringify(run));
  await shutdown();
}
