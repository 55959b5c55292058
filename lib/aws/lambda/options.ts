import { defaultRegistry } from "../../core/registry.ts";
import type { AnyStep } from "../../core/step.ts";
import type { WorkflowDefinition } from "../../core/workflow.ts";
import { type AwsRuntime, type AwsRuntimeOptions, createAwsRuntime } from "../../runtimes/aws.ts";
import { type AwsConfig, loadConfig } from "../config.ts";
import type { AwsSchedules } from "../schedules.ts";

// biome-ignore lint/suspicious/noExplicitAny: a registry holds workflows of any signature
type AnyWorkflow = WorkflowDefinition<any[], unknown>;

/**
 * The workflows a Lambda bundle runs. Workflows register themselves when their module is imported;
 * listing them here makes the import explicit (and keeps bundlers from dropping it).
 */
export interface WorkflowRegistry {
  workflows: readonly AnyWorkflow[];
  /**
   * The steps this bundle runs, when a function's bundle holds fewer than every step its modules
   * register. A step task for a step not listed (or not registered) is deferred with backoff: during a
   * deploy, the code that knows it is about to be live.
   * @default every registered step
   */
  steps?: readonly AnyStep[];
  /**
   * The schedules of this deployment (`awsSchedules([...])`): the sweeper function reconciles them
   * with EventBridge Scheduler and the step function starts their ticks' runs.
   * @default none
   */
  schedules?: AwsSchedules;
}

/** Options of the handler factories. Everything defaults to the environment (see `loadConfig`). */
export interface HandlerOptions extends AwsRuntimeOptions {
  /**
   * The first wait, in seconds, of an activation whose workflow this code does not know (a deploy
   * half done); it doubles with each receive until the message reaches the DLQ.
   * @default 60
   */
  deployBackoffSeconds?: number;
  /** @default loadConfig(process.env), read once when the factory is called (at cold start) */
  config?: AwsConfig;
  /**
   * A runtime to share between the handlers of one bundle (one set of clients and caches).
   * @default a new runtime from `config` and the other options
   */
  runtime?: AwsRuntime;
}

/** Builds the runtime once per cold start: configuration errors surface at init, naming the variable. */
export function runtimeFor(registry: WorkflowRegistry, options: HandlerOptions): AwsRuntime {
  const target = options.registry ?? defaultRegistry;
  for (const definition of registry.workflows) {
    if (target.findWorkflowVersion(definition.name, definition.version) !== definition)
      target.registerWorkflow(definition);
  }
  return options.runtime ?? createAwsRuntime(options.config ?? loadConfig(), options);
}
