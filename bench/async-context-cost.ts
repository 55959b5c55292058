/**
 * What AsyncLocalStorage costs the hot path: `npx tsx bench/async-context-cost.ts`.
 *
 * Workflow and step code find their run through an AsyncLocalStorage (lib/core/context.ts). On Node 20 and
 * 22, once one is entered, every promise the process makes runs async hooks (Node 24's AsyncContextFrame
 * has none), so its cost is the promises per step times what the hooks add to each. Prints both: the
 * promises core W1 makes per step (counted with an async hook over one W1 round) and the time per
 * promise, a loop of awaits measured before any AsyncLocalStorage is entered and after.
 */
import { AsyncLocalStorage, createHook } from "node:async_hooks";

const AWAITS = 2_000_000;

/** Nanoseconds per `await` of a fresh promise (the best of 5 runs). */
async function nsPerAwait(): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 5; run += 1) {
    const began = process.hrtime.bigint();
    for (let index = 0; index < AWAITS; index += 1) await new Promise<number>((resolve) => resolve(index));
    best = Math.min(best, Number(process.hrtime.bigint() - began) / AWAITS);
  }
  return best;
}

// Measured first: importing tsworkflow enters no AsyncLocalStorage, running a workflow does.
const without = await nsPerAwait();
new AsyncLocalStorage<number>().enterWith(1);
const withHooks = await nsPerAwait();

const { w1 } = await import("./core.ts");
for (let round = 0; round < 3; round += 1) await w1();
let promises = 0;
const counter = createHook({
  init(_id, type) {
    if (type === "PROMISE") promises += 1;
  },
});
counter.enable();
await w1();
counter.disable();
const perStep = promises / 2000;

const extra = withHooks - without;
console.log(
  `await of a new promise: ${without.toFixed(0)} ns, ${withHooks.toFixed(0)} ns with AsyncLocalStorage's hooks on (+${extra.toFixed(0)} ns)`,
);
console.log(
  `core W1: ${perStep.toFixed(1)} promises per step, so about ${((perStep * extra) / 1000).toFixed(1)} us of hooks per step (${process.version})`,
);
