import { useFileEmulators } from "./harness/file-emulators.ts";
import { describePayloads } from "./scenarios/payloads.ts";

/**
 * The AWS runtime at DynamoDB's and S3's limits, on DynamoDB Local, fauxqs, s3rver and the fake Scheduler:
 * payloads at and beyond DynamoDB's item limit, up to 10 MB through the payload bucket, a crash between an
 * S3 put and its commit. Lost timers and messages, deploys half done and retention are in recovery.test.ts.
 * Set TSW_TEST_LOG=debug to see the handlers' logs.
 */

describePayloads(useFileEmulators("tsworkflow-production"));
