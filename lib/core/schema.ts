/**
 * The schema library of tsworkflow's own validation (events, queue messages, configuration): zod/mini,
 * a small fraction of zod's size in a Lambda bundle, with zod's English messages. Users' schemas
 * (`workflow(..., { input })`, `waitForEvent(..., { schema })`) may be regular zod or zod/mini.
 */
import { en } from "zod/locales";
import { config } from "zod/mini";

config(en());

export * from "zod/mini";
