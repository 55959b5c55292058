/** The cold-start baseline: a handler that loads only the Powertools logger. */
import { Logger } from "@aws-lambda-powertools/logger";

const logger = new Logger({ serviceName: "bare" });

export const handler = async (event: unknown) => {
  logger.info("event", { event });
  return {};
};
