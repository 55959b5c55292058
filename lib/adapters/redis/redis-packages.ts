/**
 * ioredis and BullMQ, the optional peers of Redis mode, loaded here rather than imported by name: a static
 * `import ... from "bullmq"` fails while Node links the module graph, before any code of tsworkflow runs,
 * with an `ERR_MODULE_NOT_FOUND` naming a file deep inside it. Loaded with `require` (both are CommonJS
 * packages, which is what `import` loads too), a missing one is a `MissingDependencyError` that says what
 * to install, as `configure({ redis })` says.
 */
import { createRequire } from "node:module";
import type * as BullMQ from "bullmq";
import type * as IORedis from "ioredis";
import { requireOptional } from "../../core/optional-dependency.ts";

const PACKAGES = ["ioredis", "bullmq"];
const require = createRequire(import.meta.url);
const load = <T>(name: string) => requireOptional<T>(require, name, "Redis mode", PACKAGES);

export const ioredis = load<typeof IORedis>("ioredis");
export const bullmq = load<typeof BullMQ>("bullmq");
