import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The TypeScript examples of the README and docs/ import only what the package's entry points export: a
 * reader who copies an example gets no "has no exported member" error. Each entry's exports are read from
 * its API report (etc/api/<package>[-<entry>].api.md), which `npm run api:check` keeps equal to the code.
 */

const ROOT = resolve(import.meta.dirname, "../..");
const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => `docs/${name}`),
];

/** The names an entry (`tsworkflow`, `tsworkflow/aws`…) exports, from its API report; none for an unknown entry. */
function exportsOf(entry: string): Set<string> {
  const report = join(ROOT, "etc/api", `${entry.replace("/", "-")}.api.md`);
  if (!existsSync(report)) return new Set();
  const declarations = readFileSync(report, "utf8").matchAll(
    /^export (?:declare )?(?:abstract )?(?:class|interface|type|const|let|function|enum|namespace) ([\w$]+)/gm,
  );
  return new Set([...declarations].map((match) => match[1] as string));
}

/** Every named import from a `tsworkflow` entry in the docs' ```ts blocks, with where it is. */
function docImports(): { doc: string; line: number; name: string; from: string }[] {
  const found: { doc: string; line: number; name: string; from: string }[] = [];
  for (const doc of DOCS) {
    const text = readFileSync(join(ROOT, doc), "utf8");
    for (const block of text.matchAll(/```ts\n([\s\S]*?)```/g)) {
      const start = block.index + 6;
      for (const statement of (block[1] as string).matchAll(
        /import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*"(tsworkflow[^"]*)"/g,
      )) {
        const line = text.slice(0, start + statement.index).split("\n").length;
        for (const part of (statement[1] as string).split(",")) {
          const name = part
            .trim()
            .replace(/^type\s+/, "")
            .split(/\s+as\s+/)[0] as string;
          if (name) found.push({ doc, line, name, from: statement[2] as string });
        }
      }
    }
  }
  return found;
}

/**
 * The docs' ```ts blocks that use `tsworkflow/aws` or `tsworkflow/cdk`: Lambda entry files, clients and stacks,
 * which users put in a CDK app, with where each starts.
 */
function awsBlocks(): { where: string; code: string }[] {
  return DOCS.flatMap((doc) => {
    const text = readFileSync(join(ROOT, doc), "utf8");
    return [...text.matchAll(/```ts\n([\s\S]*?)```/g)]
      .filter((block) => /from "tsworkflow\/(aws|cdk)"/.test(block[1] as string))
      .map((block) => ({
        where: `${doc}:${text.slice(0, block.index).split("\n").length}`,
        code: block[1] as string,
      }));
  });
}

describe("the docs' examples", () => {
  it("import only names that the package's entry points export", () => {
    // Prepare
    const imports = docImports();
    // Act
    const missing = imports
      .filter(({ name, from }) => !exportsOf(from).has(name))
      .map(({ doc, line, name, from }) => `${doc}:${line}: ${name} from "${from}"`);
    // Assess
    expect(imports.length).toBeGreaterThan(50);
    expect(missing).toEqual([]);
  });

  it("of AWS code compile in a cdk init app: relative imports without .ts, no top-level await unless said to be an ES module", () => {
    // Prepare
    const blocks = awsBlocks();
    // Act
    // A cdk init app is CommonJS, and its `npx tsc` refuses "./x.ts" (TS5097) and a top-level await (TS1309).
    const tsImports = blocks.flatMap(({ where, code }) =>
      [...code.matchAll(/from "(\.{1,2}\/[^"]*\.ts)"/g)].map((match) => `${where}: ${match[1]}`),
    );
    const topLevelAwaits = blocks
      .filter(({ code }) => /^(?:(?:const|let) [^=]+= )?await /m.test(code) && !/ES module/.test(code))
      .map(({ where }) => where);
    // Assess
    expect(blocks.length).toBeGreaterThan(10);
    expect(tsImports).toEqual([]);
    expect(topLevelAwaits).toEqual([]);
  });
});
