import { afterAll } from "vitest";
import { removeSynthOutput } from "./helpers.ts";

/**
 * Set-up run before each file of tests/infra (see vitest.config.ts): the files share a process, so the synth
 * output of each goes when that file ends.
 */
afterAll(removeSynthOutput);
