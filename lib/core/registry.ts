import { getLogger } from "./logger.ts";
import type { AnyStep } from "./step.ts";
import type { AnyWorkflow } from "./workflow.ts";

type Listener = (definition: AnyWorkflow) => void;

/**
 * Workflows and steps register themselves here when their module is imported, so that any process
 * that imports them (an embedded app, a Redis worker, a Lambda bundle) can run their runs.
 */
const workflows = new Map<string, AnyWorkflow>();
const steps = new Map<string, AnyStep>();
const listeners = new Set<Listener>();

export function registerWorkflow(definition: AnyWorkflow): void {
  const previous = workflows.get(definition.name);
  if (previous && previous !== definition) {
    getLogger().debug(
      `workflow "${definition.name}" was defined again; the newer definition replaces the older`,
    );
  }
  workflows.set(definition.name, definition);
  for (const listener of listeners) listener(definition);
}

export function registerStep(definition: AnyStep): void {
  const previous = steps.get(definition.stepName);
  if (previous && previous !== definition) {
    getLogger().debug(
      `step "${definition.stepName}" was defined again; the newer definition replaces the older`,
    );
  }
  steps.set(definition.stepName, definition);
}

export function findWorkflow(name: string): AnyWorkflow | undefined {
  return workflows.get(name);
}

export function findStep(name: string): AnyStep | undefined {
  return steps.get(name);
}

export function registeredWorkflows(): AnyWorkflow[] {
  return [...workflows.values()];
}

/** Calls `listener` for each workflow registered from now on; returns a function that stops it. */
export function onWorkflowRegistered(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
