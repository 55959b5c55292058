import { ConfigurationError } from "../core/errors.ts";
import type { AnyStep } from "../core/step.ts";
import type { AnyWorkflow } from "../core/workflow.ts";

/** What the engine knows of the limits it was given. */
interface Enforcement {
  /** Whether rate limits are counted (a rate limit store was given). */
  readonly enforcesRates: boolean;
}

const HOW =
  "(on AWS: createHandlers(registry, { runLimits, stepLimits }) with a DynamoDBSlotStore and a DynamoDBRateLimitStore, see the README, Flow control)";

/**
 * A limit that `step(..., { concurrency, rateLimit })` declares and that these step limits would not enforce,
 * as the error its attempt fails with: a limited step never runs unlimited without a word.
 */
export function unenforcedStepLimit(
  definition: AnyStep,
  limits: Enforcement | undefined,
): ConfigurationError | undefined {
  const { concurrency, rateLimit } = definition.options;
  if (concurrency && !limits)
    return new ConfigurationError(
      `Step "${definition.stepName}" declares a concurrency limit, and this engine enforces no step limits: pass \`stepLimits: new StepLimits({ slots, rates })\` ${HOW}.`,
    );
  if (rateLimit && !limits?.enforcesRates)
    return new ConfigurationError(
      `Step "${definition.stepName}" declares a rate limit, and this engine counts no step starts: pass \`stepLimits: new StepLimits({ slots, rates })\` with \`rates\` ${HOW}.`,
    );
  return undefined;
}

/**
 * A limit that `workflow(..., { concurrency, rateLimit })` declares and that these run limits would not
 * enforce, as the error `start()` throws: a limited workflow never runs unlimited without a word.
 */
export function unenforcedRunLimit(
  definition: AnyWorkflow,
  limits: Enforcement | undefined,
): ConfigurationError | undefined {
  const { concurrency, rateLimit } = definition.options;
  if (concurrency && !limits)
    return new ConfigurationError(
      `Workflow "${definition.name}" declares a concurrency limit, and this engine enforces no run limits: pass \`runLimits: new RunLimits({ slots, rates })\` ${HOW}.`,
    );
  if (rateLimit && !limits?.enforcesRates)
    return new ConfigurationError(
      `Workflow "${definition.name}" declares a rate limit, and this engine counts no run starts: pass \`runLimits: new RunLimits({ slots, rates })\` with \`rates\` ${HOW}.`,
    );
  return undefined;
}
