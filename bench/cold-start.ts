/**
 * Cold start of the Lambda bundle that `DurableWorkflows` builds for a one-workflow app
 * (bench/lambda/one-workflow.ts), beside three baselines bundled by the same construct settings: a bare
 * handler that loads only the Powertools logger, one that also creates the DynamoDB and SQS clients
 * (what every tsworkflow function uses from its first invocation), and one with the EventBridge
 * Scheduler client as well (the floor of any DynamoDB + SQS + Scheduler handler; tsworkflow loads
 * Scheduler on first use). Each bundle is imported in fresh `node` processes (with the construct's
 * NODE_OPTIONS) and the import time is measured; the bundles take turns in each round, so that a busy
 * machine slows them alike. Also prints the minified size of each package entry and of the Lambda asset.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { App, cx_api as cxapi, aws_lambda as lambda, aws_lambda_nodejs as nodejs, Stack } from "aws-cdk-lib";
import { build } from "esbuild";
import { BUNDLING, DurableWorkflows } from "../infra/durable-workflows.ts";
import type { BenchRow as Row } from "./redis.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PROCESSES = 10;
const GOAL_MS = 30;

/** What the construct's functions get from the environment at cold start (valid, not real). */
const LAMBDA_ENVIRONMENT = {
  AWS_REGION: "us-east-1",
  TSWORKFLOW_TABLE_NAME: "orders-workflows",
  TSWORKFLOW_WORKFLOW_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/workflows.fifo",
  TSWORKFLOW_STEP_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/steps",
  TSWORKFLOW_STEP_QUEUE_ARN: "arn:aws:sqs:us-east-1:123456789012:steps",
  TSWORKFLOW_SCHEDULE_GROUP: "orders-workflows",
  TSWORKFLOW_SCHEDULER_ROLE_ARN: "arn:aws:iam::123456789012:role/scheduler",
  POWERTOOLS_LOG_LEVEL: "SILENT",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
};

/** The package entries, with the packages each leaves to the app (optional peers, Node built-ins). */
const ENTRIES: Record<string, string> = {
  tsworkflow: "lib/index.ts",
  "tsworkflow/engine": "lib/engine/index.ts",
  "tsworkflow/local": "lib/local/index.ts",
  "tsworkflow/testing": "lib/testing/index.ts",
  "tsworkflow/redis": "lib/redis/index.ts",
  "tsworkflow/aws": "lib/aws/index.ts",
  "tsworkflow/cli": "lib/cli/index.ts",
  "tsworkflow/cdk": "infra/index.ts",
};
const PEERS = [
  "@aws-sdk/*",
  "aws-cdk-lib",
  "constructs",
  "bullmq",
  "ioredis",
  "hono",
  "hono/*",
  "@hono/node-server",
  "esbuild",
  "tsx",
  "tsx/*",
];

interface Bundles {
  handler: string;
  bare: string;
  core: string;
  sdk: string;
  nodeOptions: string;
  assetFiles: Record<string, number>;
}

/** Synthesizes the three functions with the construct's bundling, under node_modules so that `@aws-sdk/*` resolves. */
function synthesize(outdir: string): Bundles {
  const app = new App({ outdir, context: { [cxapi.ASSET_RESOURCE_METADATA_ENABLED_CONTEXT]: true } });
  const stack = new Stack(app, "ColdStart");
  const workflows = new DurableWorkflows(stack, "Workflows", {
    entry: join(ROOT, "bench", "lambda", "one-workflow.ts"),
  });
  const baseline = (id: string, file: string) =>
    new nodejs.NodejsFunction(stack, id, {
      entry: join(ROOT, "bench", "lambda", file),
      runtime: lambda.Runtime.NODEJS_24_X,
      bundling: BUNDLING,
    });
  const bare = baseline("Bare", "bare-handler.ts");
  const core = baseline("DynamoDBSqsClients", "dynamodb-sqs-clients.ts");
  const sdk = baseline("SdkClients", "sdk-clients.ts");
  const assembly = app.synth();
  const template = assembly.getStackByName("ColdStart").template as {
    Resources: Record<string, { Properties: { Environment?: { Variables?: Record<string, string> } } }>;
  };
  const assetDir = (fn: lambda.Function) => {
    const resource = fn.node.defaultChild as lambda.CfnFunction;
    const metadata = resource.getMetadata(cxapi.ASSET_RESOURCE_METADATA_PATH_KEY) as string;
    return join(outdir, metadata);
  };
  const workflowId = stack.getLogicalId(workflows.workflowFunction.node.defaultChild as lambda.CfnFunction);
  const handlerDir = assetDir(workflows.workflowFunction);
  return {
    handler: join(handlerDir, "index.mjs"),
    bare: join(assetDir(bare), "index.mjs"),
    core: join(assetDir(core), "index.mjs"),
    sdk: join(assetDir(sdk), "index.mjs"),
    nodeOptions: template.Resources[workflowId]?.Properties.Environment?.Variables?.NODE_OPTIONS ?? "",
    assetFiles: Object.fromEntries(
      readdirSync(handlerDir).map((file) => [file, statSync(join(handlerDir, file)).size]),
    ),
  };
}

/** Milliseconds elapsed, and of CPU time (user + system), which other work on a shared machine disturbs far less. */
interface Timing {
  wall: number;
  cpu: number;
}

/** The time to import `bundle` in a fresh node process. */
function importTime(bundle: string, nodeOptions: string): Promise<Timing> {
  const script =
    "const c = process.cpuUsage(); const t = performance.now(); await import(process.argv[1]); const u = process.cpuUsage(c); console.log(performance.now() - t, (u.user + u.system) / 1000);";
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [
        ...nodeOptions.split(" ").filter(Boolean),
        "--input-type=module",
        "-e",
        script,
        pathToFileURL(bundle).href,
      ],
      { env: { ...process.env, ...LAMBDA_ENVIRONMENT } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`importing ${bundle} failed: ${stderr || error.message}`));
        else {
          const [wall, cpu] = (stdout.trim().split("\n").pop() ?? "").split(" ").map(Number);
          resolve({ wall: wall as number, cpu: cpu as number });
        }
      },
    );
  });
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Minified (and gzipped) size of each package entry, with its dependencies and without the optional peers. */
async function entrySizes(): Promise<{ entry: string; minified: number; gzipped: number }[]> {
  const sizes = [];
  for (const [entry, file] of Object.entries(ENTRIES)) {
    const result = await build({
      entryPoints: [join(ROOT, file)],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      minify: true,
      write: false,
      external: PEERS,
      logLevel: "silent",
    });
    const code = result.outputFiles[0]?.contents ?? new Uint8Array();
    sizes.push({ entry, minified: code.length, gzipped: gzipSync(code).length });
  }
  return sizes;
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
/** A difference in milliseconds with its sign: +12 ms, -3 ms. */
const signed = (ms: number) => `${ms < 0 ? "" : "+"}${ms.toFixed(0)} ms`;

export async function coldStartBenchmarks(): Promise<Row[]> {
  const cache = join(ROOT, "node_modules", ".cache");
  mkdirSync(cache, { recursive: true });
  const outdir = mkdtempSync(join(cache, "tsworkflow-cold-start-"));
  try {
    const bundles = synthesize(outdir);
    const times = {
      bare: [] as Timing[],
      core: [] as Timing[],
      sdk: [] as Timing[],
      handler: [] as Timing[],
    };
    const names = Object.keys(times) as (keyof typeof times)[];
    // Warms the file cache, as a Lambda's disk is warm.
    for (const name of names) await importTime(bundles[name], bundles.nodeOptions);
    for (let round = 0; round < PROCESSES; round += 1) {
      for (const name of names) times[name].push(await importTime(bundles[name], bundles.nodeOptions));
    }
    const result = (measured: Timing[], of: keyof Timing) => {
      const runs = measured.map((times) => times[of]);
      return { median: medianOf(runs), runs };
    };
    const medians = (of: keyof Timing) =>
      Object.fromEntries(
        Object.entries(times).map(([name, measured]) => [name, result(measured, of)]),
      ) as Record<keyof typeof times, ReturnType<typeof result>>;
    const { bare, core, sdk, handler } = medians("wall");
    const cpu = medians("cpu");
    const overBare = (median: number) => `(${signed(median - cpu.bare.median)})`;

    console.log("\nBundle sizes (minified; optional peers and Node built-ins left out)");
    for (const { entry, minified, gzipped } of await entrySizes())
      console.log(`  ${entry.padEnd(20)} ${kb(minified).padStart(9)}  (${kb(gzipped)} gzipped)`);
    console.log(
      `  Lambda asset of a one-workflow app: ${Object.entries(bundles.assetFiles)
        .map(([file, size]) => `${file} ${kb(size)}`)
        .join(", ")} (goal: index.mjs <= 150 KB)`,
    );

    const row = (
      workload: string,
      result: { median: number; runs: number[] },
      target: string,
      ok?: boolean,
    ) => ({
      workload,
      ...result,
      unit: "ms",
      target,
      ok,
    });
    return [
      row("init: bare handler (Powertools logger)", bare, "baseline"),
      row(
        "init: + DynamoDB and SQS clients",
        core,
        `(${signed(core.median - bare.median)}: what every tsworkflow function uses)`,
      ),
      row("init: + SDK clients (DynamoDB, SQS, Scheduler)", sdk, `(${signed(sdk.median - bare.median)})`),
      row(
        "init: tsworkflow one-workflow handler",
        handler,
        `<= bare + ${GOAL_MS} ms (${signed(handler.median - bare.median)}; ${signed(handler.median - core.median)} over the DynamoDB and SQS clients)`,
        handler.median - bare.median <= GOAL_MS,
      ),
      row("init CPU time: bare handler", cpu.bare, "baseline"),
      row("init CPU time: + DynamoDB and SQS clients", cpu.core, overBare(cpu.core.median)),
      row("init CPU time: + Scheduler client", cpu.sdk, overBare(cpu.sdk.median)),
      row(
        "init CPU time: tsworkflow one-workflow handler",
        cpu.handler,
        `${overBare(cpu.handler.median)}; ${signed(cpu.handler.median - cpu.core.median)} over the DynamoDB and SQS clients`,
      ),
    ];
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

export { PROCESSES as COLD_START_PROCESSES };
