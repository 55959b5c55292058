import { ConfigurationError, describe } from "../core/errors.ts";
import { defaultRegistry, Registry } from "../core/registry.ts";
import type { AnyStep } from "../core/step.ts";

/** A step's replacement in a test: any function, given the step's arguments, whose result is recorded. */
// biome-ignore lint/suspicious/noExplicitAny: a fake named by a string takes whatever the step is called with
export type StepFake = (...args: any[]) => unknown;

/**
 * The registry of a test environment: over the default registry (so the workflows and steps your modules
 * define are found), with its own definitions (`env.define`) and step fakes that can change at any time.
 * A fake runs in place of the step's function and under the step's own options: a fake that throws is
 * retried as the real step would be, and it waits for the step's concurrency and rate limits.
 */
export class FakeStepRegistry extends Registry {
  /** Each fake by step name, with the definition it runs as (made once per real step: the engine asks at every attempt). */
  private readonly fakes = new Map<string, { fake: StepFake; made?: { real: AnyStep; step: AnyStep } }>();

  constructor(parent: Registry = defaultRegistry) {
    super({ parent });
  }

  /**
   * Runs `fake` instead of the step of that name from now on, for the runs of this registry only.
   * @throws ConfigurationError when no step has that name: a misspelt fake would let the real step run
   */
  fake(stepName: string, fake: StepFake): void {
    // A fake that is not a function would fail every attempt, retried as the step's policy says.
    if (typeof fake !== "function")
      throw new ConfigurationError(
        `The fake of step ${JSON.stringify(stepName)} must be a function that runs instead of the step, got ${describe(fake)}.`,
      );
    if (!super.findStep(stepName))
      throw new ConfigurationError(
        `No step named ${JSON.stringify(stepName)} to fake: check the name, and import the module that defines the step (or define it with env.define) before faking it.`,
      );
    this.fakes.set(stepName, { fake });
  }

  override findStep(name: string): AnyStep | undefined {
    const real = super.findStep(name);
    const entry = this.fakes.get(name);
    if (!entry || !real) return real;
    // The real step with its function swapped and nothing else: the engine runs the fake where it would have
    // run the step, under the same options (concurrency and rate limits, retries), read from the same object.
    if (entry.made?.real !== real)
      entry.made = {
        real,
        step: Object.assign(real.bind(null), { stepName: name, options: real.options, run: entry.fake }),
      };
    return entry.made.step;
  }
}
