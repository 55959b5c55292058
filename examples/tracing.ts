/**
 * Traces of a run, printed to the console: the app registers an OpenTelemetry SDK (here the console
 * exporter of @opentelemetry/sdk-trace-base), starts a run inside its own span, and every span of the run
 * (its start, each activation, each step attempt, the retry, the sleep) joins that trace.
 *
 *   npx tsx examples/tracing.ts
 *
 * tests/observability/tracing.test.ts runs it and checks the trace it prints.
 */
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { configureLogging, sleep, step, workflow } from "tsworkflow";
import { LocalRuntime, MemoryStorage } from "tsworkflow/local";

// The app's telemetry: tsworkflow only reports spans to the SDK the app registers.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(
  new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] }),
);
configureLogging({ level: "error" });

let calls = 0;
const chargeCard = step(
  "charge_card",
  async (amount: number) => {
    calls += 1;
    if (calls === 1) throw new Error("payment gateway timeout");
    return { chargeId: "ch_1", amount };
  },
  { maxRetries: 3, retryDelay: 100 },
);
const sendReceipt = step("send_receipt", async (chargeId: string) => ({ sent: chargeId }));

export const checkout = workflow("checkout", async (amount: number) => {
  const charge = await chargeCard(amount);
  await sleep("200ms");
  return sendReceipt(charge.chargeId);
});

const runtime = new LocalRuntime({ storage: new MemoryStorage() });
await trace.getTracer("shop").startActiveSpan("POST /checkout", async (span) => {
  const { runId } = await runtime.start(checkout, [42]);
  span.end();
  const run = await runtime.waitForRun(runId);
  console.log(`run ${runId} ${run.status}: trace ${span.spanContext().traceId}`);
});
await runtime.close();
