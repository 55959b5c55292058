import { ConfigurationError } from "../core/errors.ts";

/**
 * The limit that a workflow's or a step's `options` declare and that `limits` (the engine's `runLimits` or
 * `stepLimits`, named `option`) would not enforce, as the error to fail with: a limited workflow or step
 * never runs unlimited without a word (on AWS the limits are opt-in, see the README, Flow control).
 */
export function unenforcedLimit(
  what: string,
  options: { concurrency?: unknown; rateLimit?: unknown },
  limits: { readonly enforcesRates: boolean } | undefined,
  option: "runLimits" | "stepLimits",
): ConfigurationError | undefined {
  const missing =
    options.concurrency && !limits
      ? "concurrency"
      : options.rateLimit && !limits?.enforcesRates
        ? "rateLimit"
        : "";
  if (missing)
    return new ConfigurationError(
      `${what} declares ${missing}: pass ${option} to enforce it (README, Flow control).`,
    );
  return undefined;
}
