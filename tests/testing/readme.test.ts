import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

/** The TypeScript blocks of the README's Testing section. */
function testingBlocks(): string[] {
  const readme = read("README.md");
  const section = readme.slice(readme.indexOf("## Testing workflows"), readme.indexOf("## Logging"));
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] as string);
}

describe("the README's Testing section", () => {
  it.each(["tests/testing/approval.test.ts", "tests/testing/node-test/approval.node-test.ts"])(
    "shows %s as it is, so the example it gives is the one npm test runs",
    (path) => {
      // Act
      const blocks = testingBlocks();

      // Assess
      expect(blocks).toContain(read(path));
    },
  );
});
