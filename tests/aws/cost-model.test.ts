import { useFileEmulators } from "./harness/file-emulators.ts";
import { describeCostModel } from "./scenarios/cost-model.ts";

/**
 * The AWS cost model of docs/aws.md, counted on the emulators: every request the real handlers make and the
 * DynamoDB capacity they consume, per step, sleep and wait. Set TSW_TEST_LOG=debug to see the handlers' logs.
 */

describeCostModel(useFileEmulators("tsworkflow-cost-model"));
