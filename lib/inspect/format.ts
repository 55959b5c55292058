import type { RunStatus } from "../ports/event-store.ts";

/** ANSI styling that turns itself off when the output is not a terminal or `NO_COLOR` is set. */
export interface Style {
  readonly enabled: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  blue(text: string): string;
  cyan(text: string): string;
  magenta(text: string): string;
  /** The status in its colour: green completed, red failed, yellow suspended… */
  status(status: RunStatus | string): string;
}

const wrap = (enabled: boolean, open: number, close: number) => (text: string) =>
  enabled ? `\u001b[${open}m${text}\u001b[${close}m` : text;

/**
 * Colours on a terminal, none in a pipe or a file. `NO_COLOR` (https://no-color.org) turns them off,
 * `FORCE_COLOR` (other than `0`) turns them on.
 */
export function createStyle(
  stream: { isTTY?: boolean },
  env: Record<string, string | undefined> = process.env,
): Style {
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0" && env.FORCE_COLOR !== "false";
  const enabled = env.NO_COLOR ? false : forced || stream.isTTY === true;
  const style = {
    enabled,
    bold: wrap(enabled, 1, 22),
    dim: wrap(enabled, 2, 22),
    red: wrap(enabled, 31, 39),
    green: wrap(enabled, 32, 39),
    yellow: wrap(enabled, 33, 39),
    blue: wrap(enabled, 34, 39),
    magenta: wrap(enabled, 35, 39),
    cyan: wrap(enabled, 36, 39),
  };
  const byStatus: Record<string, (text: string) => string> = {
    pending: style.dim,
    running: style.blue,
    suspended: style.yellow,
    completed: style.green,
    failed: style.red,
    cancelled: style.magenta,
    retrying: style.yellow,
    sleeping: style.yellow,
  };
  return { ...style, status: (status) => (byStatus[status] ?? ((text: string) => text))(status) };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escape sequences is the point
const ANSI = /\u001b\[[0-9;]*m/g;

/** C0 controls (ESC, BEL, CR, backspace…), DEL, C1 controls and the bidirectional overrides. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text that came from a run (error and log messages, payloads, reasons, keys) made safe for a terminal:
 * each control character is shown as its `\uXXXX` escape, so a message cannot clear the screen, set the
 * window title, hide text or make links. `multiline` keeps newlines and tabs (stacks, JSON blocks).
 * Our own colours are added after, to clean text.
 */
export function clean(text: string, options: { multiline?: boolean } = {}): string {
  return text.replace(
    options.multiline ? CONTROL_BUT_LINES : CONTROL,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** The width of `text` on a terminal, not counting colour codes. */
export function visibleWidth(text: string): number {
  return [...text.replace(ANSI, "")].length;
}

/** Left-aligned columns separated by two spaces, with a bold header; the last column is not padded. */
export function renderTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  style: Style,
): string {
  const widths = headers.map((header, column) =>
    Math.max(visibleWidth(header), ...rows.map((row) => visibleWidth(row[column] ?? ""))),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1 ? cell : cell + " ".repeat((widths[column] ?? 0) - visibleWidth(cell)),
      )
      .join("  ")
      .trimEnd();
  return [style.bold(line(headers)), ...rows.map(line)].join("\n");
}

/** `2026-01-02T03:04:05.678Z` → `2026-01-02 03:04:05Z` (UTC, to the second). */
export function formatTime(iso: string | number): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return `${date.toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** A count and its noun in the right number: `1 run`, `2 runs`, `0 mismatches`. */
export function counted(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}

/** A short human duration: `340ms`, `1.25s`, `12.5s`, `3m 20s`, `2h 5m`, `3d 4h`. */
export function formatSpan(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  const value = Math.max(0, Math.round(ms));
  if (value < 1000) return `${value}ms`;
  if (value < 10_000) return `${(value / 1000).toFixed(2)}s`;
  if (value < 60_000) return `${(value / 1000).toFixed(1)}s`;
  const units: [string, number][] = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ];
  const index = units.findIndex(([, size]) => value >= size);
  const [bigName, big] = units[index] as [string, number];
  const [smallName, small] = units[index + 1] as [string, number];
  const rest = Math.floor((value % big) / small);
  return `${Math.floor(value / big)}${bigName}${rest > 0 ? ` ${rest}${smallName}` : ""}`;
}

/** `text` cut to `max` characters, the last one an ellipsis when it was longer. */
export function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One line of JSON, cut to `max` characters. */
export function compactJson(value: unknown, max = 60): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? "undefined";
  } catch {
    text = String(value);
  }
  return cut(text, max);
}

/** Indented JSON for a block of `runs show`. */
export function prettyJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? "undefined";
  } catch {
    return String(value);
  }
}

/** Indents every line but the first by `width` spaces. */
export function hangingIndent(text: string, width: number): string {
  return text.split("\n").join(`\n${" ".repeat(width)}`);
}
