import { DuplicateNameError } from "./errors.ts";
import type { AnyStep } from "./step.ts";
import type { AnyWorkflow } from "./workflow.ts";

type Listener = (definition: AnyWorkflow) => void;

/** Options of {@link Registry}. */
export interface RegistryOptions {
  /**
   * A registry to look in for what this one does not define: a test registry over the default one overrides
   * some steps or workflows and keeps the rest.
   * @default none
   */
  parent?: Registry;
}

/**
 * Workflows and steps by name: runs find their code here. `workflow()` and `step()` register into the
 * default registry when their module is imported, so that any process that imports them (an embedded app, a
 * Redis worker, a Lambda bundle) can run their runs. A runtime, engine or test environment can take a
 * registry of its own instead (option `registry`), e.g. to replace a step's implementation in a test.
 * @example
 * import { step } from "tsworkflow";
 * import { defaultRegistry, LocalRuntime, MemoryStorage, Registry } from "tsworkflow/local";
 * const registry = new Registry({ parent: defaultRegistry });
 * registry.define(() => step("charge_card", async () => ({ charged: true })));   // a fake for this test
 * const runtime = new LocalRuntime({ storage: new MemoryStorage(), registry });
 */
export class Registry {
  /** Each workflow name's versions (the key `""` for no version), and the current one (see `findWorkflow`). */
  private readonly workflows = new Map<string, AnyWorkflow>();
  private readonly versions = new Map<string, Map<string, AnyWorkflow>>();
  private readonly steps = new Map<string, AnyStep>();
  private readonly listeners = new Set<Listener>();
  private readonly parent: Registry | undefined;

  constructor(options: RegistryOptions = {}) {
    this.parent = options.parent;
  }

  /**
   * Registers a workflow under its name. The same definition registered again (a module evaluated twice) is
   * harmless; another function under a name already taken is an error, since runs find their code by name.
   * @throws DuplicateNameError when the name is taken here by a workflow with another function
   */
  registerWorkflow(definition: AnyWorkflow): void {
    const versions = this.versions.get(definition.name) ?? new Map<string, AnyWorkflow>();
    const previous = versions.get(definition.version ?? "");
    if (previous && !sameFunction(previous.fn, definition.fn))
      throw new DuplicateNameError("workflow", definition.name);
    versions.set(definition.version ?? "", definition);
    this.versions.set(definition.name, versions);
    this.workflows.set(definition.name, newestOf(versions));
    for (const listener of this.listeners) listener(definition);
  }

  /**
   * Registers a step under its name (see {@link Registry.registerWorkflow}).
   * @throws DuplicateNameError when the name is taken here by a step with another function
   */
  registerStep(definition: AnyStep): void {
    const previous = this.steps.get(definition.stepName);
    if (previous && !sameFunction(previous.run, definition.run))
      throw new DuplicateNameError("step", definition.stepName);
    this.steps.set(definition.stepName, definition);
  }

  /**
   * Runs `define` with this registry as the one `workflow()` and `step()` register into (instead of the
   * default registry), and returns what it returns.
   */
  define<T>(define: () => T): T {
    const previous = current;
    current = this;
    try {
      return define();
    } finally {
      current = previous;
    }
  }

  /** The workflow of this name that new runs start with: its highest `version` (see `WorkflowOptions.version`). */
  findWorkflow(name: string): AnyWorkflow | undefined {
    return this.workflows.get(name) ?? this.parent?.findWorkflow(name);
  }

  /**
   * The code a run of `name` started with `version` goes on with (undefined: the code registered without a
   * version). A registry that has the name looks no further for its versions.
   */
  findWorkflowVersion(name: string, version: string | undefined): AnyWorkflow | undefined {
    const versions = this.versions.get(name);
    if (!versions) return this.parent?.findWorkflowVersion(name, version);
    return versions.get(version ?? "");
  }

  /** The versions of workflow `name` registered here (undefined for code without a version). */
  workflowVersions(name: string): (string | undefined)[] {
    const versions = this.versions.get(name);
    if (!versions) return this.parent?.workflowVersions(name) ?? [];
    return [...versions.values()].map((definition) => definition.version);
  }

  /** The step of this name: defined here, or else found in the parent. */
  findStep(name: string): AnyStep | undefined {
    return this.steps.get(name) ?? this.parent?.findStep(name);
  }

  /** Every workflow this registry (and its parent) knows. */
  registeredWorkflows(): AnyWorkflow[] {
    const all = new Map((this.parent?.registeredWorkflows() ?? []).map((w) => [w.name, w]));
    for (const [name, definition] of this.workflows) all.set(name, definition);
    return [...all.values()];
  }

  /**
   * Calls `listener` for each workflow registered from now on, here or in the parent (unless this registry
   * defines that name itself); returns a function that stops it.
   */
  onWorkflowRegistered(listener: Listener): () => void {
    this.listeners.add(listener);
    const stopParent = this.parent?.onWorkflowRegistered((definition) => {
      if (!this.workflows.has(definition.name)) listener(definition);
    });
    return () => {
      this.listeners.delete(listener);
      stopParent?.();
    };
  }
}

/** The highest version (numeric-aware: "10" after "9"); code without a version is the lowest. */
function newestOf(versions: Map<string, AnyWorkflow>): AnyWorkflow {
  const [newest] = [...versions.values()].sort((a, b) =>
    (b.version ?? "").localeCompare(a.version ?? "", "en", { numeric: true }),
  );
  return newest as AnyWorkflow;
}

/** The same function, or the same source evaluated again (a module loaded twice, e.g. under two paths). */
function sameFunction(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === "function" && typeof b === "function" && a.toString() === b.toString());
}

/** The registry `workflow()` and `step()` register into unless inside {@link Registry.define}. */
export const defaultRegistry = new Registry();
let current: Registry = defaultRegistry;

/** Where `workflow()` and `step()` register the definitions they make. */
export function definingRegistry(): Registry {
  return current;
}

export function findWorkflow(name: string): AnyWorkflow | undefined {
  return defaultRegistry.findWorkflow(name);
}

export function findStep(name: string): AnyStep | undefined {
  return defaultRegistry.findStep(name);
}

export function registeredWorkflows(): AnyWorkflow[] {
  return defaultRegistry.registeredWorkflows();
}

/** Registers a workflow in the default registry (see {@link Registry.registerWorkflow}). */
export function registerWorkflow(definition: AnyWorkflow): void {
  defaultRegistry.registerWorkflow(definition);
}

/** Calls `listener` for each workflow registered in the default registry from now on. */
export function onWorkflowRegistered(listener: Listener): () => void {
  return defaultRegistry.onWorkflowRegistered(listener);
}
