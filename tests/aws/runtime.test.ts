import { useFileEmulators } from "./harness/file-emulators.ts";
import { describeEndToEnd } from "./scenarios/end-to-end.ts";
import { describeExamples } from "./scenarios/examples.ts";
import { describeFeatures } from "./scenarios/features.ts";
import { describeRegistries } from "./scenarios/registries.ts";
import { describeVersioning } from "./scenarios/versioning.ts";

/**
 * The AWS runtime on the emulators: DynamoDB Local, fauxqs, the fake EventBridge Scheduler, and the
 * Lambda SQS poller driving the real handlers. The folder's DynamoDB Local (a JVM) serves every file; the
 * cost model, flow control and random programs on the same emulators are files of their own
 * (cost-model.test.ts, flow-control.test.ts, random-programs.test.ts), which run beside this one.
 * Set TSW_TEST_LOG=debug to see the handlers' logs.
 */

const emulatorsOf = useFileEmulators("tsworkflow-runtime");

describeEndToEnd(emulatorsOf);
describeExamples(emulatorsOf);
describeFeatures(emulatorsOf);
describeVersioning(emulatorsOf);
describeRegistries(emulatorsOf);
