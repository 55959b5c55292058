import { createWriteStream, type WriteStream } from "node:fs";
import type { LogItem } from "@aws-lambda-powertools/logger";
import { Logger } from "@aws-lambda-powertools/logger";
import { ConfigurationError } from "./errors.ts";
import { checkOptionNames } from "./options.ts";

export type LogLevelName = "debug" | "info" | "warning" | "error" | "silent";

/** Options of {@link configureLogging}. */
export interface LoggingOptions {
  /** @default "info" (or `POWERTOOLS_LOG_LEVEL` / `LOG_LEVEL` when set) */
  level?: LogLevelName;
  /** Also append every log line to this file. @default no file */
  logFile?: string;
  /** One JSON object per line (what CloudWatch expects). @default true on Lambda, false elsewhere */
  jsonLogs?: boolean;
  /** Add `runId`, `workflowName`, `stepId`, `stepName` to each line. @default true */
  showContext?: boolean;
}

// Pure: left out of a bundle that never calls configureLogging (the Lambda functions).
const OPTION_NAMES = /* @__PURE__ */ Object.keys({
  level: 0,
  logFile: 0,
  jsonLogs: 0,
  showContext: 0,
} satisfies Record<keyof LoggingOptions, 0>);

/** Context keys tsworkflow adds to log lines about a run. */
export interface RunLogContext {
  runId?: string;
  workflowName?: string;
  stepId?: string;
  stepName?: string;
  [key: string]: unknown;
}

type PowertoolsLevel = "DEBUG" | "INFO" | "WARN" | "ERROR" | "SILENT";

/** Powertools' level of each name, and "warn" for "warning" (as `LOG_LEVEL=warn` has it). */
const POWERTOOLS_LEVEL: Record<LogLevelName | "warn", PowertoolsLevel> = {
  debug: "DEBUG",
  info: "INFO",
  warning: "WARN",
  warn: "WARN",
  error: "ERROR",
  silent: "SILENT",
};

const levelOf = (name: string): PowertoolsLevel | undefined =>
  Object.hasOwn(POWERTOOLS_LEVEL, name) ? POWERTOOLS_LEVEL[name as LogLevelName] : undefined;

const CONTEXT_KEYS = new Set(["runId", "workflowName", "stepId", "stepName"]);
const BASE_KEYS = new Set(["level", "message", "timestamp", "service", "sampling_rate", "xray_trace_id"]);

/** Powertools logger with a human-readable text mode and an optional log file. */
class TsWorkflowLogger extends Logger {
  constructor(
    private readonly settings: Required<Omit<LoggingOptions, "logFile" | "level">> & { file?: WriteStream },
  ) {
    super({ serviceName: "tsworkflow" });
  }

  protected override printLog(logLevel: number, log: LogItem): void {
    log.prepareForPrint();
    const attributes = log.getAttributes();
    if (!this.settings.showContext) for (const key of CONTEXT_KEYS) delete attributes[key];
    const line = this.settings.jsonLogs
      ? JSON.stringify(attributes, this.getJsonReplacer())
      : toText(attributes);
    const stream = logLevel >= 16 ? process.stderr : process.stdout;
    stream.write(`${line}\n`);
    this.settings.file?.write(`${line}\n`);
  }
}

function toText(attributes: Record<string, unknown>): string {
  const time = String(attributes.timestamp ?? new Date().toISOString());
  const level = String(attributes.level ?? "INFO").padEnd(5);
  const extras = Object.entries(attributes)
    .filter(([key]) => !BASE_KEYS.has(key))
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  return [time, level, String(attributes.message ?? ""), ...extras].join(" ");
}

let current: Logger | undefined;
let currentFile: WriteStream | undefined;

/**
 * Sets up tsworkflow's structured logger (Powertools for AWS Lambda underneath).
 * @example
 * import { configureLogging } from "tsworkflow";
 * configureLogging({ level: "debug", logFile: "./workflows.log", jsonLogs: false, showContext: true });
 */
export function configureLogging(options: LoggingOptions = {}): void {
  checkOptionNames("configureLogging()", options, OPTION_NAMES);
  setUpLogging(options);
}

/** `configureLogging` once its option names are checked (the defaults, on first use, need no check). */
function setUpLogging(options: LoggingOptions): void {
  // An unknown level here is a mistake to report; in the environment, one that other tools may read too.
  const level =
    options.level === undefined
      ? (levelOf((process.env.POWERTOOLS_LOG_LEVEL ?? process.env.LOG_LEVEL ?? "").toLowerCase()) ?? "INFO")
      : levelOf(options.level);
  if (!level)
    throw new ConfigurationError(
      `Unknown log level "${options.level}": use debug, info, warning, error or silent.`,
    );
  currentFile?.end();
  currentFile = options.logFile ? createWriteStream(options.logFile, { flags: "a" }) : undefined;
  const logger = new TsWorkflowLogger({
    jsonLogs: options.jsonLogs ?? process.env.AWS_LAMBDA_FUNCTION_NAME !== undefined,
    showContext: options.showContext ?? true,
    ...(currentFile ? { file: currentFile } : {}),
  });
  logger.setLogLevel(level);
  current = logger;
}

/**
 * The logger tsworkflow writes to (configured with defaults on first use).
 * @internal Left out of the published types: Powertools types it with @types/aws-lambda.
 */
export function getLogger(): Logger {
  if (!current) setUpLogging({});
  return current as Logger;
}
