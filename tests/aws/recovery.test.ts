import { useFileEmulators } from "./harness/file-emulators.ts";
import { describeRecovery } from "./scenarios/recovery.ts";

/**
 * The AWS runtime when things get lost, on DynamoDB Local, fauxqs, s3rver and the fake Scheduler: timers
 * dropped and dead-lettered, the sweeper with each fault injected, deploys half done, poison messages and the
 * reaper. Set TSW_TEST_LOG=debug to see the handlers' logs.
 */

describeRecovery(useFileEmulators("tsworkflow-recovery"));
