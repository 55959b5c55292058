/**
 * Registries: the code each runtime runs. A runtime whose registry replaces one step (a dry run, a test)
 * beside a runtime on the default registry, and a sandbox with a workflow of the same name as the app's,
 * all in one process.
 *
 *   npx tsx examples/registries.ts
 */
import { step, workflow } from "tsworkflow";
import { defaultRegistry, LocalRuntime, MemoryStorage, Registry } from "tsworkflow/local";

// The app's code: importing the module registers it in the default registry.
export const sendInvoice = step("send_invoice", async (customer: string) => `invoice mailed to ${customer}`);
export const billing = workflow("billing", async (customer: string) => {
  const sent = await sendInvoice(customer);
  return `billed ${customer}: ${sent}`;
});

/** Runs `billing` on three runtimes, each with its own registry, and returns their results. */
export async function compareRegistries(customer: string): Promise<string[]> {
  // Over the default registry: replaces send_invoice, finds everything else (billing) in the parent.
  const dryRun = new Registry({ parent: defaultRegistry });
  dryRun.define(() => step("send_invoice", async (to: string) => `dry run, nothing mailed to ${to}`));

  // A registry of its own: its billing never clashes with the app's.
  const sandbox = new Registry();
  const sandboxBilling = sandbox.define(() =>
    workflow("billing", async (to: string) => `sandbox bill for ${to}, nothing sent`),
  );

  const runtimes = [
    new LocalRuntime({ storage: new MemoryStorage() }), // the default registry
    new LocalRuntime({ storage: new MemoryStorage(), registry: dryRun }),
    new LocalRuntime({ storage: new MemoryStorage(), registry: sandbox }),
  ] as const;
  const [app, dry, inSandbox] = runtimes;
  const runs = [
    [app, await app.start(billing, [customer])],
    [dry, await dry.start(billing, [customer])],
    [inSandbox, await inSandbox.start(sandboxBilling, [customer])],
  ] as const;
  const results: string[] = [];
  for (const [runtime, { runId }] of runs) results.push(String((await runtime.waitForRun(runId)).result));
  for (const runtime of runtimes) await runtime.close();
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const result of await compareRegistries("acme")) console.log(result);
}
