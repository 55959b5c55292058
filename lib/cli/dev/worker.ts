/**
 * The worker of `tsworkflow dev`: `worker <module> <dir>`. Opens the embedded runtime on the directory
 * (waiting for the previous worker to let go of it), makes it the runtime of the top-level API, imports
 * the workflows module, and runs until SIGTERM. Tells its parent how it goes, one JSON line at a time.
 */
import { resolve } from "node:path";
import { configure, shutdown } from "../../api.ts";
import { StorageLockedError } from "../../core/errors.ts";
import { importWorkflowsModule } from "../../core/workflows-module.ts";
import { LocalRuntime } from "../../runtimes/embedded.ts";

const [moduleFile, dir] = process.argv.slice(2) as [string, string];
const tell = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`);

process.once("SIGTERM", () => {
  void shutdown().finally(() => process.exit(0));
});

let runtime: LocalRuntime | undefined;
for (const deadline = Date.now() + 15_000; !runtime; ) {
  try {
    runtime = new LocalRuntime({ dir });
  } catch (error) {
    if (!(error instanceof StorageLockedError) || Date.now() > deadline) throw error;
    await new Promise((done) => setTimeout(done, 50));
  }
}
configure({ runtime });
try {
  await importWorkflowsModule(resolve(moduleFile));
} catch (error) {
  tell({ event: "failed", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  await shutdown();
  process.exit(1);
}
await runtime.ready;
tell({ event: "ready", pid: process.pid });
// The runtime's timers keep the process alive; this keeps it alive when nothing is scheduled.
setInterval(() => {}, 1 << 30);
