import { assertRunId } from "../core/ids.ts";
import { FINISHED_STATUSES } from "../ports/event-store.ts";
import { type Backend, takeDirectory } from "./backend.ts";
import { ActionNotAvailableError, EXIT } from "./errors.ts";
import type { Output } from "./runs.ts";

/**
 * `runs repair`: cuts a damaged run file before its first damaged line (a copy kept), as the README's
 * "Repairing a damaged run file" does by hand. Only with no app owning the directory: the repair needs its lock.
 */
export async function repairCommand(backend: Backend, runId: string, io: Output): Promise<number> {
  assertRunId(runId);
  if (backend.kind !== "file")
    throw new ActionNotAvailableError(
      `Only the file backend's run files can be repaired; ${backend.label} keeps no run files.`,
    );
  const storage = await takeDirectory(
    backend,
    (error) =>
      `Cannot repair run ${runId} while ${error.holder} owns ${backend.dir}: stop the app, then run the command again.`,
  );
  try {
    const repair = await storage.repairRun(runId);
    if (!repair) {
      io.out(`Run ${io.style.bold(runId)}'s file is not damaged: nothing to repair.\n`);
      return EXIT.ok;
    }
    const cut = `cut ${repair.cutLines} of its ${repair.keptLines + repair.cutLines} lines from line ${repair.damagedLine}`;
    if (repair.status === undefined)
      io.out(
        `Run ${io.style.bold(runId)}: its first line was damaged, so nothing of it could be kept; the file was moved to ${repair.copy}. The run is gone and its idempotency key is free again.\n`,
      );
    else
      io.out(
        `Run ${io.style.bold(runId)}: ${cut}; it is ${io.style.status(repair.status)} at its last kept commit. The file as it was is in ${repair.copy}.\n${FINISHED_STATUSES.has(repair.status) ? "" : "Start the app: the run goes on from there, and the steps recorded in the lines cut off run again.\n"}`,
      );
    return EXIT.ok;
  } finally {
    await storage.close();
  }
}
