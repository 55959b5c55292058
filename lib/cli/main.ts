import { CommanderError } from "commander";
import {
  InvalidRunIdError,
  InvalidRunQueryError,
  RunNotFoundError,
  TsWorkflowError,
} from "../core/errors.ts";
import { clean, createStyle } from "../inspect/format.ts";
import { EXIT, UsageError } from "./errors.ts";
import { type CliContext, createProgram } from "./program.ts";

/**
 * Runs one `tsworkflow` command line (without `node` and the script) and returns its exit code:
 * 0 ok, 1 the run failed or was not found or the backend failed, 2 the command line was wrong.
 * Errors are printed as one message, never as a stack (set `TSWORKFLOW_DEBUG=1` for the stack).
 */
export async function main(argv: readonly string[], context: CliContext = processContext()): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = createProgram(context, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    return report(error, context);
  }
}

function report(error: unknown, context: CliContext): number {
  if (error instanceof CommanderError) {
    // Commander has printed its message (or the help) already.
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return EXIT.ok;
    if (error.code === "commander.help") return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return EXIT.usage;
  }
  const prefix = context.errStyle.red("error:");
  const message = error instanceof Error ? error.message : String(error);
  context.err(`${prefix} ${clean(message, { multiline: true })}\n`);
  if (context.env.TSWORKFLOW_DEBUG && error instanceof Error && error.stack)
    context.err(`${context.errStyle.dim(error.stack)}\n`);
  if (
    error instanceof UsageError ||
    error instanceof InvalidRunIdError ||
    error instanceof InvalidRunQueryError
  )
    return EXIT.usage;
  if (error instanceof RunNotFoundError || error instanceof TsWorkflowError) return EXIT.failed;
  if (!context.env.TSWORKFLOW_DEBUG)
    context.err(`${context.errStyle.dim("(set TSWORKFLOW_DEBUG=1 to see where it happened)")}\n`);
  return EXIT.failed;
}

function processContext(): CliContext {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    style: createStyle(process.stdout),
    errStyle: createStyle(process.stderr),
    now: () => Date.now(),
    env: process.env,
  };
}

/** What `bin/tsworkflow.js` calls: runs the command, flushes the output, and exits with its code. */
export async function run(argv: readonly string[]): Promise<never> {
  // `tsworkflow runs list | head` closes the pipe early: that is not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(EXIT.ok);
  });
  const code = await main(argv);
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  // A backend client may keep reconnecting in the background: the command is over, so the process is too.
  process.exit(code);
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) resolve();
    else stream.write("", () => resolve());
  });
}
