/**
 * A child process for the crash tests: `start <dir> <scenario>` starts a run and prints its id;
 * `resume <dir> <runId>` opens the same directory, lets the runtime resume unfinished runs, and prints
 * the finished run as JSON. Steps append to `<dir>/side-effects.log`, so the test can count executions.
 */
import { appendFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { configure, getStepInfo, shutdown, sleep, start, step, waitForRun, workflow } from "tsworkflow";

const [command, dir, arg] = process.argv.slice(2) as [string, string, string];
const effects = join(dir, "side-effects.log");
const record = (name: string) =>
  appendFileSync(effects, `${name} attempt=${getStepInfo()?.attempt} pid=${process.pid}\n`);

const prepare = step("crash_prepare", async () => {
  record("prepare");
  return "prepared";
});

/** In the first process, hangs after signalling, so the test can kill the process in the middle of it. */
const slow = step("crash_slow", async () => {
  record("slow");
  if (!existsSync(join(dir, "second-process"))) {
    appendFileSync(join(dir, "slow-started"), "1");
    await new Promise(() => {});
  }
  return "slow done";
});

const finish = step("crash_finish", async (a: string, b: string) => {
  record("finish");
  return `${a} + ${b}`;
});

export const crashWorkflow = workflow("crash_workflow", async () => {
  const a = await prepare();
  const b = await slow();
  await sleep("1s");
  return finish(a, b);
});

export const sleepyWorkflow = workflow("crash_sleepy", async () => {
  await sleep("2s");
  return finish("slept", "woke");
});

configure({ dir });
if (command === "start") {
  const runId = await start(arg === "sleepy" ? sleepyWorkflow : crashWorkflow, []);
  console.log(JSON.stringify({ runId }));
  // Stay alive until the test kills this process.
  setInterval(() => {}, 1000);
} else {
  appendFileSync(join(dir, "second-process"), "1");
  const run = await waitForRun(arg, { timeoutMs: 20_000 });
  console.log(JSON.stringify(run));
  await shutdown();
}
