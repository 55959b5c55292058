import { useFileEmulators } from "./harness/file-emulators.ts";
import { describeRandomPrograms } from "./scenarios/random-programs.ts";

/**
 * The random programs of the property tests through the real handlers on the emulators, with Lambda's
 * instance churn (see scenarios/random-programs.ts). Set TSW_TEST_LOG=debug to see the handlers' logs.
 */

describeRandomPrograms(useFileEmulators("tsworkflow-random-programs"));
