/**
 * `npm run demo`: the onboarding workflow on the embedded file backend (./.tsworkflow), with a 3 s pause
 * instead of a day. Prints each event as it is recorded, then the finished run and its event log.
 */
import { configureLogging, getEvents, shutdown, start, type WorkflowEvent, waitForRun } from "tsworkflow";
import { FileStorage } from "../lib/adapters/file/file-storage.ts";
import { eventsCommand, type Output, showCommand } from "../lib/cli/runs.ts";
import { describeEvent } from "../lib/inspect/describe.ts";
import { createStyle } from "../lib/inspect/format.ts";
import { onboarding } from "./onboarding.ts";

configureLogging({ level: "warning" });
const style = createStyle(process.stdout);
const dir = process.env.TSWORKFLOW_DIR ?? ".tsworkflow";

console.log(style.bold("tsworkflow demo: onboarding on the embedded file backend"));
console.log(style.dim(`runs are stored in ${dir}/runs/<runId>.jsonl, fsync'd before they count\n`));

const began = Date.now();
const runId = await start(onboarding, ["user_123", "3s"]);
console.log(`started run ${style.bold(runId)}\n`);

let shown = 0;
const showProgress = (events: WorkflowEvent[]) => {
  for (const event of events.slice(shown)) {
    const after = ((Date.parse(event.timestamp) - began) / 1000).toFixed(2).padStart(6);
    console.log(`  ${style.dim(`+${after}s`)}  ${event.type.padEnd(19)} ${describeEvent(event)}`);
  }
  shown = events.length;
};

const finished = waitForRun(runId, { timeoutMs: 60_000 });
let done = false;
void finished.finally(() => {
  done = true;
});
while (!done) {
  showProgress(await getEvents(runId));
  await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 200))]);
}
showProgress(await getEvents(runId));
const run = await finished;

const io: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  style,
  errStyle: createStyle(process.stderr),
  now: () => Date.now(),
};
await shutdown();
const storage = new FileStorage({ dir, readOnly: true });
console.log(`\n${style.bold("The finished run")} (npx tsworkflow runs show ${runId})\n`);
await showCommand(storage, runId, {}, io);
console.log(`\n${style.bold("Its event log")} (npx tsworkflow runs events ${runId})\n`);
await eventsCommand(storage, runId, {}, io);
if (run.status !== "completed") process.exitCode = 1;
