import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const LIB = resolve(import.meta.dirname, "../../lib");

/**
 * The layers of lib/, lowest first, and what each may import. A module belongs to the first layer whose
 * prefix its path (relative to lib/) starts with. The entries and the apps built on the layers (the CLI,
 * the Lambda handlers, the test environment) may import any layer.
 */
const LAYERS: { name: string; prefixes: string[]; mayImport: string[] }[] = [
  { name: "core", prefixes: ["core/"], mayImport: [] },
  { name: "ports", prefixes: ["ports/"], mayImport: ["core"] },
  { name: "webhooks", prefixes: ["webhooks/"], mayImport: ["core", "ports"] },
  { name: "observability", prefixes: ["observability/"], mayImport: ["core", "ports"] },
  { name: "schedules", prefixes: ["schedules/"], mayImport: ["core", "ports"] },
  {
    name: "engine",
    prefixes: ["engine/"],
    mayImport: ["core", "ports", "observability"],
  },
  // What a run waits for reads the log as the engine does (its admission, when a retry is due): the CLI and
  // the test environment share it here, above the engine, which describes nothing.
  { name: "inspect", prefixes: ["inspect/"], mayImport: ["core", "ports", "engine"] },
  // Adapters may read schedule declarations (EventBridge Scheduler builds its expressions from them).
  { name: "adapters", prefixes: ["adapters/"], mayImport: ["core", "ports", "schedules"] },
  { name: "aws-config", prefixes: ["aws/config.ts"], mayImport: ["core"] },
  {
    name: "runtimes",
    prefixes: ["runtimes/"],
    mayImport: [
      "core",
      "ports",
      "webhooks",
      "observability",
      "schedules",
      "engine",
      "adapters",
      "aws-config",
    ],
  },
  {
    name: "entries and apps",
    prefixes: [""],
    mayImport: [
      "core",
      "ports",
      "webhooks",
      "inspect",
      "observability",
      "schedules",
      "engine",
      "adapters",
      "aws-config",
      "runtimes",
    ],
  },
];

/** Entry points that sit in a layer's folder: they belong to the entries (`tsworkflow/engine`). */
const ENTRY_FILES = new Set(["engine/index.ts"]);

function layerOf(file: string): string {
  const path = relative(LIB, file);
  if (ENTRY_FILES.has(path)) return "entries and apps";
  const layer = LAYERS.find((candidate) => candidate.prefixes.some((prefix) => path.startsWith(prefix)));
  return (layer as (typeof LAYERS)[number]).name;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative import (values, types, re-exports, dynamic imports) of lib/, resolved. */
const imports = sources(LIB).flatMap((file) =>
  ts
    .preProcessFile(readFileSync(file, "utf8"), true, true)
    .importedFiles.filter((imported) => imported.fileName.startsWith("."))
    .map((imported) => ({ from: file, to: resolve(dirname(file), imported.fileName) })),
);

const show = ({ from, to }: { from: string; to: string }) =>
  `${relative(LIB, from)} imports ${relative(LIB, to)}`;

describe("the dependencies of lib/", () => {
  it("reads the imports of every module", () => {
    expect(imports.length).toBeGreaterThan(300);
  });

  it("stay inside lib/ (no import of tests, infra, functions, local or examples)", () => {
    expect(imports.filter(({ to }) => !to.startsWith(`${LIB}/`)).map(show)).toEqual([]);
  });

  it("point one way: core ← ports ← engine ← adapters ← runtimes ← entries and apps", () => {
    const against = imports.filter(({ from, to }) => {
      const layer = LAYERS.find((candidate) => candidate.name === layerOf(from));
      const target = layerOf(to);
      return target !== layer?.name && !layer?.mayImport.includes(target);
    });
    expect(against.map(show)).toEqual([]);
  });

  it("keep the engine's decisions free of I/O: decide.ts and waits/ import no store, queue, timer or clock", () => {
    const decisionModules = (file: string) => {
      const path = relative(LIB, file);
      return path === "engine/decide.ts" || path.startsWith("engine/waits/");
    };
    // The decision core may read the author's API kernel, the inbox codec, port types and the live execution.
    const allowed = (to: string) => {
      const path = relative(LIB, to);
      return (
        path.startsWith("core/") ||
        path.startsWith("engine/waits/") ||
        ["ports/inbox.ts", "ports/event-store.ts", "ports/task-queue.ts", "engine/execution.ts"].includes(
          path,
        )
      );
    };
    const decisions = imports.filter(({ from }) => decisionModules(from));
    expect(decisions.length).toBeGreaterThan(5);
    expect(decisions.filter(({ to }) => !allowed(to)).map(show)).toEqual([]);
  });
});
