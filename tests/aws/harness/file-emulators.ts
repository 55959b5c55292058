import { afterAll, beforeAll } from "vitest";
import { configureLogging } from "../../../lib/core/logger.ts";
import { type Emulators, startEmulators } from "./aws-stack.ts";

/**
 * The emulators of one test file (its own fauxqs, s3rver, fake Scheduler and clock, and a table of its own
 * in the folder's DynamoDB Local), started before its first test and stopped after its last, with the
 * handlers' logs silenced: set TSW_TEST_LOG=debug to see them. Returns what the scenarios call to reach them.
 */
export function useFileEmulators(tableName: string): () => Emulators {
  let emulators: Emulators | undefined;
  beforeAll(async () => {
    configureLogging({ level: (process.env.TSW_TEST_LOG as "debug" | undefined) ?? "silent" });
    emulators = await startEmulators(tableName);
  });
  afterAll(async () => {
    await emulators?.stop();
    configureLogging();
  });
  return () => {
    if (!emulators) throw new Error("The emulators did not start.");
    return emulators;
  };
}
