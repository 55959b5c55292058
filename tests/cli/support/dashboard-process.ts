import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { until } from "../../local/support/child.ts";
import { REPO_ROOT } from "../run-cli.ts";

const CHROMIUM = "/usr/bin/chromium";

/** `tsworkflow dashboard ...args` on a free port, as a user starts it: its URL and its output so far. */
export async function startDashboard(args: readonly string[]) {
  const server = spawn(process.execPath, ["bin/tsworkflow.js", "dashboard", "--port", "0", ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  server.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  server.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  await until(
    () => /http:\/\/127\.0\.0\.1:\d+\//.test(output) || server.exitCode !== null,
    "the dashboard listens",
    20_000,
  );
  const url = output.match(/http:\/\/127\.0\.0\.1:\d+\//)?.[0] ?? "";
  if (!url) throw new Error(`the dashboard did not start: ${output}`);
  return { server, url, output: () => output };
}

export async function stopDashboard(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null) return;
  const exited = new Promise((resolve) => server.once("exit", resolve));
  server.kill("SIGTERM");
  await exited;
}

/** Headless Debian Chromium, as the dashboard tests drive it. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}
