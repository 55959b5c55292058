import type { Logger } from "@aws-lambda-powertools/logger";
import { getLogger } from "../../core/logger.ts";
import type { LambdaContext } from "./lambda-types.ts";

/**
 * The logger, with the invocation's context (function, request id, cold start) added to every line.
 * Powertools types `addContext` with @types/aws-lambda's `Context`, which users need not install; the
 * handlers take {@link LambdaContext}, the part of it that Lambda passes and Powertools reads. Kept out
 * of the published declarations so that no user needs Powertools' types.
 * @internal
 */
export function loggerFor(context: LambdaContext): Logger {
  const logger = getLogger();
  logger.addContext(context as Parameters<Logger["addContext"]>[0]);
  return logger;
}
