/**
 * The worker of `tsworkflow dev`: `worker <module> <dir> [--no-schedules]`. Opens the embedded runtime on the
 * directory (waiting for the previous worker to let go of it), makes it the runtime of the top-level API
 * (which the module's own `configure()` calls do not replace), imports the workflows module, resumes the
 * unfinished runs (now that their workflows are registered), fires the schedules it exports (as
 * `tsworkflow worker` does; state in `<dir>/schedules.json`), and runs until SIGTERM. Tells its parent how
 * it goes, one JSON line at a time.
 */
import { resolve } from "node:path";
import { keepRuntime, shutdown } from "../../api.ts";
import { StorageLockedError } from "../../core/errors.ts";
import { importWorkflowsModule } from "../../core/workflows-module.ts";
import { LocalRuntime, scheduleStoreOf } from "../../runtimes/embedded.ts";
import { exportedSchedules } from "../../schedules/schedule.ts";
import { Scheduler } from "../../schedules/scheduler.ts";

const [moduleFile, dir, flag] = process.argv.slice(2) as [string, string, string | undefined];
const tell = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`);

let scheduler: Scheduler | undefined;
let names: string[] = [];
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  scheduler?.stop();
  void shutdown().finally(() => process.exit(0));
};
// SIGINT: Ctrl-C reaches the whole process group, this worker too.
process.once("SIGTERM", stop).once("SIGINT", stop);
// The parent is gone without stopping this worker (killed, or a Ctrl-C while it started): its end of stdin
// closes. Stop too, rather than hold the directory's lock for ever.
process.stdin.once("end", stop).resume();

let runtime: LocalRuntime | undefined;
for (const deadline = Date.now() + 15_000; !runtime; ) {
  try {
    // Unfinished runs are resumed once the module has registered their workflows (below).
    runtime = new LocalRuntime({ dir, recover: false });
  } catch (error) {
    if (!(error instanceof StorageLockedError) || Date.now() > deadline) throw error;
    await new Promise((done) => setTimeout(done, 50));
  }
}
// A configure() in the module would replace this runtime (and the directory the dashboard shows): the
// runtime stays, and the parent says once that the call was ignored.
let configureIgnored = false;
keepRuntime(runtime, () => {
  if (configureIgnored) return;
  configureIgnored = true;
  tell({ event: "configure-ignored" });
});
try {
  const exported = await importWorkflowsModule(resolve(moduleFile));
  const schedules = flag === "--no-schedules" ? [] : exportedSchedules(exported);
  // The module's top-level start() calls need the runtime before its schedules are known: they get a
  // scheduler of their own over the store the runtime would use.
  if (schedules.length > 0)
    scheduler = new Scheduler({ runtime, store: scheduleStoreOf(runtime.storage), schedules });
  names = schedules.map((definition) => definition.name);
} catch (error) {
  tell({ event: "failed", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  await shutdown();
  process.exit(1);
}
await runtime.ready;
await runtime.recover();
await scheduler?.start();
tell({ event: "ready", pid: process.pid, schedules: names });
// The runtime's timers keep the process alive; this keeps it alive when nothing is scheduled.
setInterval(() => {}, 1 << 30);
