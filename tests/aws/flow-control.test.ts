import { useFileEmulators } from "./harness/file-emulators.ts";
import { describeFlowControl } from "./scenarios/flow-control.ts";
import { describePendingRuns } from "./scenarios/pending-runs.ts";

/**
 * Run and step concurrency and rate limits on the AWS runtime, through the real handlers on the emulators
 * (DynamoDBSlotStore, DynamoDBRateLimitStore), and the runs waiting in their lines that are cancelled or
 * retried before they begin. Set TSW_TEST_LOG=debug to see the handlers' logs.
 */

const emulatorsOf = useFileEmulators("tsworkflow-flow-control");

describeFlowControl(emulatorsOf);
describePendingRuns(emulatorsOf);
