import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  consumerEnv,
  freshDir,
  installedPackages,
  lastJsonLine,
  mustRun,
  nodeBinary,
  npmInstall,
  type PackResult,
  pack,
  projectFrom,
  REPO_ROOT,
  type Result,
  readJson,
  run,
} from "./support.ts";

/**
 * The package as users get it: the repository is packed as `npm publish` would pack it (building
 * dist/), the tarball is installed into fresh projects made from tests/fixtures/consumers (and a CDK
 * app made by `cdk init`), and each runs, type-checks or synthesizes with nothing but what a user
 * installs. Dependencies come from the local npm cache where it has them.
 */

const BIN = join(REPO_ROOT, "node_modules", ".bin");
const LAMBDA_BUNDLE_LIMIT = 150 * 1024;
/** Packages that only some entries need: an app that does not use those entries never installs them. */
const OPTIONAL_PEERS = [
  "bullmq",
  "ioredis",
  "hono",
  "@hono/node-server",
  "aws-cdk-lib",
  "constructs",
  "esbuild",
  "tsx",
];

let work: string;
let packed: PackResult & { tarball: string };
let jsApp: string;
let tsApp: string;
let awsApp: string;
let cdkApp: string;
const node: Record<number, string> = {};
/**
 * The slow work that only some suites read, each started as soon as what it needs is there and awaited by
 * the tests that read it: attw and publint read the tarball, tsc the TypeScript app once it is installed, the
 * CDK synth writes to the CDK app's cdk.out once the app is made. Mostly single-threaded or waiting on the
 * disk and the cache, they overlap on the cores with each other and with the plain JavaScript app's tests.
 */
let background: {
  publint: Promise<Result>;
  attw: Promise<Result>;
  awsInstall: Promise<Result>;
  typeCheck: Promise<Result>;
  synth: Promise<Result>;
};

beforeAll(async () => {
  work = freshDir("package");
  packed = await pack(work);
  jsApp = projectFrom("js-app");
  tsApp = projectFrom("ts-app");
  awsApp = projectFrom("aws-app");
  cdkApp = join(work, "orders");
  mkdirSync(cdkApp);
  background = {
    publint: run(join(BIN, "publint"), [packed.tarball, "--strict"], { cwd: work }),
    // attw's TypeScript predates require() of ES modules, which `engines` requires: that rule is left out.
    attw: run(
      join(BIN, "attw"),
      [packed.tarball, "--ignore-rules", "cjs-resolves-to-esm", "--format", "table-flipped"],
      { cwd: work },
    ),
    awsInstall: npmInstall(awsApp, [packed.tarball]),
    typeCheck: npmInstall(tsApp, [packed.tarball]).then(() =>
      run(join(BIN, "tsc"), ["-p", "."], { cwd: tsApp }),
    ),
    // The app's own CDK CLI, with the app command cdk init wrote (`npx tsc && npx tsx bin/orders.ts`).
    synth: createCdkApp(cdkApp).then(() =>
      mustRun(join(cdkApp, "node_modules", ".bin", "cdk"), ["synth", "--quiet", "--no-notices"], {
        cwd: cdkApp,
        env: consumerEnv({ CDK_DISABLE_CLI_TELEMETRY: "true" }),
      }),
    ),
  };
  // A failed install or synth fails the suite that awaits it, not the process meanwhile.
  for (const task of Object.values(background)) task.catch(() => {});
  // What the tarball's and the plain JavaScript app's tests read. Installs are mostly waiting on the disk
  // and the cache: they run side by side.
  await Promise.all([
    npmInstall(jsApp, [packed.tarball]),
    ...[18, 20, 22, 24].map(async (major) => {
      node[major] = await nodeBinary(major);
    }),
  ]);
}, 600_000);

afterAll(async () => {
  // No background work outlives the directories it works in.
  if (background) await Promise.allSettled(Object.values(background));
  for (const dir of [work, jsApp, tsApp, awsApp]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `cdk init app --language typescript` (the repository's CDK CLI), then the app's own stack and workflows. */
async function createCdkApp(dir: string): Promise<void> {
  await mustRun(join(BIN, "cdk"), ["init", "app", "--language", "typescript", "--generate-only"], {
    cwd: dir,
  });
  for (const generated of ["bin/orders.ts", "lib/orders-stack.ts", "tsconfig.json", "cdk.json"])
    if (!existsSync(join(dir, generated)))
      throw new Error(`cdk init made no ${generated}: the layout changed`);
  projectFrom("cdk-app", dir);
  await npmInstall(dir, [packed.tarball]);
}

describe("the tarball", () => {
  it("holds dist/, bin/, the README, the LICENSE and the user docs, and no sources, tests, bench, fixtures or CI files", () => {
    const paths = packed.files.map((file) => file.path);
    const topLevel = new Set(paths.map((path) => path.split("/")[0]));
    expect([...topLevel].sort()).toEqual(["LICENSE", "README.md", "bin", "dist", "docs", "package.json"]);
    expect(paths).toContain("dist/lib/index.js");
    expect(paths).toContain("dist/lib/index.d.ts");
    expect(paths).toContain("dist/lib/index.js.map");
    expect(paths).toContain("dist/infra/index.js");
    expect(paths.filter((path) => path.endsWith(".ts") && !path.endsWith(".d.ts"))).toEqual([]);
    expect(paths.filter((path) => /(^|\/)(tests?|bench|fixtures|\.ci)\//.test(path))).toEqual([]);
    console.log(
      `tarball: ${(packed.size / 1024).toFixed(0)} KB packed, ${(packed.unpackedSize / 1024).toFixed(0)} KB unpacked, ${packed.entryCount} files`,
    );
  });

  it("ships source maps that hold the TypeScript they map to, which the package does not ship as files", () => {
    const installed = join(jsApp, "node_modules", "tsworkflow");
    const maps = packed.files.map((file) => file.path).filter((path) => path.endsWith(".js.map"));
    expect(maps.length).toBeGreaterThan(50);
    const missing = maps.filter((path) => {
      const map = readJson<{ sources: string[]; sourcesContent?: (string | null)[] }>(join(installed, path));
      return map.sources.length === 0 || map.sources.some((_, index) => !map.sourcesContent?.[index]);
    });
    expect(missing).toEqual([]);
  });

  it("has a LICENSE that matches the license field", () => {
    const manifest = readJson<{ license: string }>(join(jsApp, "node_modules", "tsworkflow", "package.json"));
    expect(manifest.license).toBe("MIT");
    expect(packed.files.map((file) => file.path)).toContain("LICENSE");
  });

  it("publishes no declaration that needs @types/aws-lambda or Powertools' types", () => {
    const dist = join(jsApp, "node_modules", "tsworkflow", "dist");
    const declarations = readdirSync(dist, { recursive: true, encoding: "utf8" }).filter((file) =>
      file.endsWith(".d.ts"),
    );
    expect(declarations.length).toBeGreaterThan(50);
    // Import and export statements only: a TSDoc example may show how the app imports Powertools.
    const offending = declarations.filter((file) =>
      /^(?:(?:import|export)\b[^\n]*|\}\s*)from "(aws-lambda|@aws-lambda-powertools\/[^"]+)"/m.test(
        readFileSync(join(dist, file), "utf8"),
      ),
    );
    expect(offending).toEqual([]);
  });

  it("declares each entry's types with only the packages the README tells its users to install", () => {
    const root = join(jsApp, "node_modules", "tsworkflow");
    const manifest = readJson<{
      exports: Record<string, { types?: string }>;
      dependencies: Record<string, string>;
    }>(join(root, "package.json"));
    const dependencies = Object.keys(manifest.dependencies);
    const declared = Object.fromEntries(
      Object.entries(manifest.exports)
        .filter(([, target]) => target.types)
        .map(([entry, target]) => [entry, packagesDeclaredFrom(join(root, target.types as string))]),
    );
    const peersOf = (entry: string) => declared[entry]?.filter((name) => !dependencies.includes(name));
    expect(peersOf(".")).toEqual([]);
    expect(peersOf("./engine")).toEqual([]);
    expect(peersOf("./local")).toEqual([]);
    expect(peersOf("./testing")).toEqual([]);
    expect(peersOf("./redis")).toEqual(["bullmq", "ioredis"]);
    expect(peersOf("./aws")?.every((name) => name.startsWith("@aws-sdk/"))).toBe(true);
    // docs/deploy.md lists them for a CDK app that type-checks libraries (`skipLibCheck: false`).
    const deployDocs = readFileSync(join(root, "docs", "deploy.md"), "utf8");
    const listed = /with `skipLibCheck: false`[\s\S]*?install `([^`]+)`/.exec(deployDocs)?.[1];
    expect(listed?.split(" ").sort()).toEqual(peersOf("./aws"));
    expect(peersOf("./cli")).toEqual(["hono"]);
    expect(peersOf("./cdk")).toEqual(["aws-cdk-lib", "constructs"]);
  });

  it("passes publint's checks, warnings included", async () => {
    const result = await background.publint;
    expect(result.stdout + result.stderr).toContain("All good!");
    expect(result.code).toBe(0);
  });

  it("has types for every entry point under node10, node16 (ESM and CommonJS) and bundler resolution", async () => {
    const result = await background.attw;
    expect(result.stdout + result.stderr).toContain("No problems found");
    expect(result.code).toBe(0);
  });
});

describe("a plain JavaScript app", () => {
  const runIds: Record<string, string> = {};

  it.each([20, 22, 24])("runs a workflow from an ES module with plain node on Node %i", async (major) => {
    const result = await run(node[major] as string, ["app.mjs"], { cwd: jsApp });
    expect(result.stderr).toBe("");
    const output = lastJsonLine<{
      runId: string;
      sleeperId: string;
      status: string;
      result: unknown;
      events: string[];
    }>(result.stdout);
    expect(output).toMatchObject({ status: "completed", result: "hello ada" });
    expect(output.events).toEqual([
      "workflow_started",
      "step_started",
      "step_completed",
      "sleep_created",
      "workflow_suspended",
      "workflow_resumed",
      "sleep_completed",
      "workflow_completed",
    ]);
    runIds[`hello${major}`] = output.runId;
    runIds[`sleeper${major}`] = output.sleeperId;
  });

  it.each([20, 22, 24])(
    "require()s the package from CommonJS and runs a workflow on Node %i",
    async (major) => {
      const result = await run(node[major] as string, ["app.cjs"], { cwd: jsApp });
      expect(result.stderr).toBe("");
      expect(lastJsonLine(result.stdout)).toEqual({ status: "completed", result: 42 });
    },
  );

  it("imports and requires the author's, engine, local and testing entries with no optional peer installed", async () => {
    expect([...(await installedPackages(jsApp))].filter((name) => OPTIONAL_PEERS.includes(name))).toEqual([]);
    for (const script of ["entries.mjs", "entries.cjs"]) {
      const result = await run(node[20] as string, [script], { cwd: jsApp });
      expect(result.stderr).toBe("");
      expect(lastJsonLine(result.stdout)).toEqual({
        tsworkflow: "function",
        "tsworkflow/engine": "function",
        "tsworkflow/local": "function",
        "tsworkflow/testing": "function",
      });
    }
  });

  it("gets a clear message on a Node.js older than engines allows", async () => {
    const cli = await run(node[18] as string, [join("node_modules", ".bin", "tsworkflow"), "--version"], {
      cwd: jsApp,
    });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain("tsworkflow needs Node.js 20.19+ or 22.12+; this is Node.js v18.");
    const required = await run(node[18] as string, ["app.cjs"], { cwd: jsApp });
    expect(required.code).not.toBe(0);
    expect(required.stderr).toContain("ERR_REQUIRE_ESM");
    expect(required.stderr).not.toContain("SyntaxError");
  });

  it("lists the app's runs with the installed npx tsworkflow", async () => {
    const result = await run("npx", ["tsworkflow", "runs", "list"], { cwd: jsApp });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    for (const major of [20, 22, 24]) {
      expect(result.stdout).toMatch(new RegExp(`${runIds[`hello${major}`]}\\s+hello\\s+completed`));
      expect(result.stdout).toMatch(new RegExp(`${runIds[`sleeper${major}`]}\\s+sleeper\\s+suspended`));
    }
  });

  it("cancels a run with --workflows ./workflows.mjs, a plain JavaScript module", async () => {
    const runId = runIds.sleeper20 as string;
    const cancel = await run(
      "npx",
      ["tsworkflow", "runs", "cancel", runId, "--workflows", "./workflows.mjs"],
      {
        cwd: jsApp,
      },
    );
    expect(cancel.stderr).toBe("");
    expect(cancel.code).toBe(0);
    const show = await run("npx", ["tsworkflow", "runs", "show", runId], { cwd: jsApp });
    expect(show.stdout).toMatch(/cancelled/);
  });

  it("asks for tsx to load --workflows ./workflows.ts, then loads it once tsx is installed", async () => {
    const runId = runIds.sleeper22 as string;
    const cli = join("node_modules", "tsworkflow", "bin", "tsworkflow.js");
    const args = [cli, "runs", "cancel", runId, "--workflows", "./workflows.ts"];
    // Node 20 cannot strip types itself.
    const without = await run(node[20] as string, args, { cwd: jsApp });
    expect(without.code).toBe(1);
    expect(without.stderr).toContain(
      "needs tsx, which is not installed. Install it with `npm install tsx`, or pass the compiled .js module.",
    );
    expect(without.stderr).not.toMatch(/\n\s+at /);

    await npmInstall(jsApp, ["tsx"]);
    const withTsx = await run(node[20] as string, args, { cwd: jsApp });
    expect(withTsx.stderr).toBe("");
    expect(withTsx.code).toBe(0);
    const show = await run("npx", ["tsworkflow", "runs", "show", runId], { cwd: jsApp });
    expect(show.stdout).toMatch(/cancelled/);
  });

  it("names the packages to install for Redis mode and the dashboard when they are missing", async () => {
    const redis = await run("npx", ["tsworkflow", "runs", "list", "--redis", "redis://127.0.0.1:9"], {
      cwd: jsApp,
    });
    expect(redis.code).toBe(1);
    expect(redis.stderr).toContain(
      "Redis mode needs ioredis and bullmq, which are not installed. Install them with `npm install ioredis bullmq`.",
    );
    const dashboard = await run("npx", ["tsworkflow", "dashboard", "--port", "0"], { cwd: jsApp });
    expect(dashboard.code).toBe(1);
    expect(dashboard.stderr).toContain("`npm install hono @hono/node-server`");
    // The entry itself, imported or required by the app, says the same as configure({ redis }).
    for (const script of ["redis-entry.mjs", "redis-entry.cjs"]) {
      const entry = await run(node[20] as string, [script], { cwd: jsApp });
      expect(entry.stderr).toBe("");
      expect(lastJsonLine(entry.stdout)).toEqual({
        name: "MissingDependencyError",
        code: "MISSING_DEPENDENCY",
        message:
          "Redis mode needs ioredis and bullmq, which are not installed. Install them with `npm install ioredis bullmq`.",
      });
    }
    // tsworkflow/cli loads without them (its helpers need neither); the dashboard, made or served, names both.
    for (const script of ["cli-entry.mjs", "cli-entry.cjs"]) {
      const entry = await run(node[20] as string, [script], { cwd: jsApp });
      expect(entry.stderr).toBe("");
      expect(lastJsonLine(entry.stdout)).toEqual({
        main: "function",
        name: "MissingDependencyError",
        code: "MISSING_DEPENDENCY",
        message:
          "The dashboard needs hono and @hono/node-server, which are not installed. Install them with `npm install hono @hono/node-server`.",
      });
    }
  });
});

describe("an app that uses only tsworkflow/aws", () => {
  beforeAll(() => background.awsInstall, 240_000);

  it("installs none of the packages of the other entries", async () => {
    const installed = await installedPackages(awsApp);
    expect(installed.has("tsworkflow")).toBe(true);
    expect(installed.has("@aws-sdk/client-dynamodb")).toBe(true);
    expect([...installed].filter((name) => OPTIONAL_PEERS.includes(name))).toEqual([]);
  });

  it("require()s it and starts a client for its other Lambdas", async () => {
    const result = await run(node[20] as string, ["start-order.cjs"], { cwd: awsApp });
    expect(result.stderr).toBe("");
    expect(lastJsonLine(result.stdout)).toEqual({ start: "function" });
  });
});

describe("a strict TypeScript app (module nodenext, exactOptionalPropertyTypes, no skipLibCheck)", () => {
  it("type-checks with start()'s inferred argument types and step results typed as they arrive, a wrong use being a compile error", async () => {
    // The @ts-expect-error lines in src/orders.ts fail the check if start() accepts the wrong arguments, a
    // step's Date result is typed as a Date, or a step or workflow whose parameters do not survive JSON compiles.
    const result = await background.typeCheck;
    expect(result.stdout + result.stderr).toBe("");
    expect(result.code).toBe(0);
  });
});

describe("a CDK app made by cdk init, with its own workflows file", () => {
  interface Template {
    Resources: Record<
      string,
      { Type: string; Properties: { Handler?: string }; Metadata?: Record<string, unknown> }
    >;
  }
  let functions: Template["Resources"][string][];

  beforeAll(async () => {
    await background.synth;
    const template = readJson<Template>(join(cdkApp, "cdk.out", "OrdersStack.template.json"));
    functions = Object.values(template.Resources).filter(
      (resource) => resource.Type === "AWS::Lambda::Function",
    );
  }, 240_000);

  it("synthesizes a DurableWorkflows stack with the workflow, step, start, sweeper and reaper functions", () => {
    expect(functions.map((fn) => fn.Properties.Handler).sort()).toEqual([
      "index.reaperHandler",
      "index.startHandler",
      "index.stepHandler",
      "index.sweeperHandler",
      "index.workflowHandler",
    ]);
  });

  it(`bundles a one-workflow app into a Lambda asset of at most ${LAMBDA_BUNDLE_LIMIT / 1024} KB of minified JavaScript`, () => {
    const assetDir = join(cdkApp, "cdk.out", String(functions[0]?.Metadata?.["aws:asset:path"]));
    const sizes = Object.fromEntries(
      readdirSync(assetDir).map((file) => [file, statSync(join(assetDir, file)).size]),
    );
    console.log(
      `Lambda asset: ${Object.entries(sizes)
        .map(([file, size]) => `${file} ${(size / 1024).toFixed(1)} KB (${size} bytes)`)
        .join(", ")}`,
    );
    expect(sizes["index.mjs"]).toBeGreaterThan(0);
    // Every function's handler is exported by the bundle (a missing export fails only when invoked on AWS).
    const code = readFileSync(join(assetDir, "index.mjs"), "utf8");
    const exported = [...code.matchAll(/export\s*\{([^}]*)\}/g)].pop()?.[1];
    const names = (exported ?? "").split(",").map((part) =>
      part
        .trim()
        .split(/\s+as\s+/)
        .pop(),
    );
    for (const fn of functions)
      expect(names).toContain(String(fn.Properties.Handler).replace(/^index\./, ""));
    expect(sizes["index.mjs"]).toBeLessThanOrEqual(LAMBDA_BUNDLE_LIMIT);
  });

  it("leaves the EventBridge Scheduler and S3 SDKs out of the Lambda's init: the bundle imports them on first use", () => {
    // Prepare
    const assetDir = join(cdkApp, "cdk.out", String(functions[0]?.Metadata?.["aws:asset:path"]));
    // Act
    const code = readFileSync(join(assetDir, "index.mjs"), "utf8");
    const staticImports = [...code.matchAll(/from\s*"(@aws-sdk\/[^"]+)"/g)].map((match) => match[1]);
    const dynamicImports = [...code.matchAll(/import\(\s*"(@aws-sdk\/[^"]+)"\s*\)/g)].map(
      (match) => match[1],
    );
    // Assess
    expect(new Set(staticImports)).toEqual(
      new Set(["@aws-sdk/client-dynamodb", "@aws-sdk/lib-dynamodb", "@aws-sdk/client-sqs"]),
    );
    expect(new Set(dynamicImports)).toEqual(new Set(["@aws-sdk/client-scheduler", "@aws-sdk/client-s3"]));
  });
});

/**
 * The packages a declaration file and the declarations it imports name (`from "x"`, `import("x")`), sorted:
 * what TypeScript needs installed to check them with `skipLibCheck: false`.
 */
function packagesDeclaredFrom(entry: string): string[] {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    // Comments left out: a TSDoc example shows how an app imports things.
    const code = readFileSync(file, "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    for (const [, specifier] of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)"([^"]+)"/g)) {
      if (!specifier || specifier.startsWith("node:")) continue;
      if (specifier.startsWith(".")) {
        visit(join(dirname(file), specifier.replace(/\.(?:d\.)?[jt]s$/, ".d.ts")));
        continue;
      }
      const parts = specifier.split("/");
      packages.add(specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] as string));
    }
  };
  visit(entry);
  return [...packages].sort();
}
