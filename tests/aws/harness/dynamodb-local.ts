import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { freePort, TEST_CREDENTIALS, TEST_REGION } from "./free-port.ts";

/** A running DynamoDB Local (the real emulator, a Java process) on a free loopback port. */
export interface DynamoDBLocal {
  endpoint: string;
  port: number;
  /** A client for this emulator; pass `options` to add middleware or settings. */
  client(): DynamoDBClient;
  stop(): Promise<void>;
}

/** Where the amplify-dynamodb-simulator package keeps DynamoDBLocal.jar and its native libraries. */
export function dynamoDBLocalPaths(): { jar: string; libDir: string } {
  const require = createRequire(import.meta.url);
  const packageDir = dirname(require.resolve("amplify-dynamodb-simulator/package.json"));
  const jar = join(packageDir, "emulator", "DynamoDBLocal.jar");
  const libDir = join(packageDir, "emulator", "DynamoDBLocal_lib");
  if (!existsSync(jar)) throw new Error(`DynamoDBLocal.jar not found at ${jar}: run npm ci.`);
  return { jar, libDir };
}

/**
 * Starts DynamoDB Local in memory with the machine's `java` (17+), waits until it answers, and
 * returns a handle that stops it.
 */
export async function startDynamoDBLocal(options: { timeoutMs?: number } = {}): Promise<DynamoDBLocal> {
  const { jar, libDir } = dynamoDBLocalPaths();
  const port = await freePort();
  const child = spawn(
    "java",
    [
      `-Djava.library.path=${libDir}`,
      "-Xms64m",
      "-Xmx512m",
      // Startup dominates in tests: the client compiler and the serial collector start fastest.
      "-XX:TieredStopAtLevel=1",
      "-XX:+UseSerialGC",
      "-jar",
      jar,
      "-inMemory",
      "-sharedDb",
      "-disableTelemetry",
      "-port",
      String(port),
    ],
    { cwd: dirname(jar), stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const collect = (chunk: Buffer) => {
    if (output.length < 20_000) output += chunk.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const { endpoint, client } = handleOf(port);
  const probe = client();
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  try {
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`DynamoDB Local exited with code ${child.exitCode}:\n${output}`);
      try {
        await probe.send(new ListTablesCommand({}));
        break;
      } catch {
        if (Date.now() > deadline)
          throw new Error(`DynamoDB Local did not answer on ${endpoint} in time:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    }
  } catch (error) {
    await stopChild(child, exited);
    throw error;
  } finally {
    probe.destroy();
  }

  return { ...handleOf(port), stop: () => stopChild(child, exited) };
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The port of the DynamoDB Local that the files of the test folders share (see dynamodb-local-setup.ts). */
    sharedDynamoDBLocalPort?: number;
  }
}

/**
 * The DynamoDB Local of the test run when vitest.config.ts gives one to the folder's files (each file
 * keeps to tables of its own; its `stop()` leaves it running for the next file), else one started for
 * the caller, as {@link startDynamoDBLocal}. A JVM takes seconds to start.
 */
export async function folderDynamoDBLocal(): Promise<DynamoDBLocal> {
  // Outside vitest (the benchmarks) there is no folder.
  const port = process.env.VITEST ? (await import("vitest")).inject("sharedDynamoDBLocalPort") : undefined;
  if (port === undefined) return startDynamoDBLocal();
  return { ...handleOf(port), stop: async () => {} };
}

function handleOf(port: number): Omit<DynamoDBLocal, "stop"> {
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    client: () =>
      new DynamoDBClient({ endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS, maxAttempts: 3 }),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}
