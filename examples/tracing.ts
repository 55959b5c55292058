/**
 * Traces of a run with OpenTelemetry, printed to the console: the app registers an SDK (here
 * `@opentelemetry/sdk-trace-base` with its console exporter), and tsworkflow's spans appear in the trace
 * of the span that called `start()`: the run, each activation, each step attempt (a failed one with its
 * error, then its retry), the sleep and the child run.
 *
 *   npx tsx examples/tracing.ts
 *
 * tests/observability/tracing-example.test.ts runs it.
 */
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { runChild, sleep, step, workflow } from "tsworkflow";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";

// The app's OpenTelemetry setup (tsworkflow never starts an exporter by itself).
const provider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())],
});
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);

let charges = 0;
const charge = step(
  "charge_card",
  async (amount: number) => {
    charges += 1;
    if (charges === 1) throw new Error("payment gateway timed out");
    return { charged: amount };
  },
  { maxRetries: 3, retryDelay: "100ms" },
);
const sendReceipt = step("send_receipt", async (amount: number) => `receipt for ${amount}`);
const receipt = workflow("traced_receipt", async (amount: number) => sendReceipt(amount));
const order = workflow("traced_order", async (amount: number) => {
  await charge(amount);
  await sleep("200ms");
  return runChild(receipt, [amount]);
});

const runtime = new LocalRuntime({ storage: new MemoryStorage() });
await trace.getTracer("shop").startActiveSpan("POST /orders", async (span) => {
  const { runId } = await runtime.start(order, [42]);
  span.end();
  const run = await runtime.waitForRun(runId);
  console.log(`run ${runId} ${run.status} in trace ${span.spanContext().traceId}`);
});
await runtime.close();
await provider.shutdown();
