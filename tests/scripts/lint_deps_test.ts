import assert from "node:assert/strict";
import {
  findCycles,
  type ImportEdge,
  lintDeps,
  parseImports,
  resolveSpecifier,
} from "../../scripts/lint_deps.ts";

/** Write `files` (path → contents) under a fresh temp dir. */
async function fixture(files: Record<string, string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "anya-lint-deps-" });
  for (const [path, text] of Object.entries(files)) {
    const dir = path.split("/").slice(0, -1).join("/");
    if (dir !== "") await Deno.mkdir(`${root}/${dir}`, { recursive: true });
    await Deno.writeTextFile(`${root}/${path}`, text);
  }
  return root;
}

async function lintFixture(files: Record<string, string>) {
  const root = await fixture(files);
  try {
    return await lintDeps(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("parseImports() finds static, type, re-export, side-effect and dynamic imports", () => {
  const src = `import a from "./a.ts";
import type { B } from './b.ts';
import c, {
  d as e,
} from "./c.ts";
import "./side.ts";
import * as ns from "./ns.ts";
import data from "./d.sql" with { type: "text" };
export { f } from "./f.ts";
export type { G } from "./g.ts";
export * from "./h.ts";
export * as i from "./i.ts";
const j = await import("./j.ts");
type K = typeof import("./k.ts");
`;
  assert.deepEqual(parseImports(src), [
    { specifier: "./a.ts", line: 1 },
    { specifier: "./b.ts", line: 2 },
    { specifier: "./c.ts", line: 5 },
    { specifier: "./side.ts", line: 6 },
    { specifier: "./ns.ts", line: 7 },
    { specifier: "./d.sql", line: 8 },
    { specifier: "./f.ts", line: 9 },
    { specifier: "./g.ts", line: 10 },
    { specifier: "./h.ts", line: 11 },
    { specifier: "./i.ts", line: 12 },
    { specifier: "./j.ts", line: 13 },
    { specifier: "./k.ts", line: 14 },
  ]);
});

Deno.test("parseImports() ignores import-like text in comments, strings, templates and regexes", () => {
  const src = `// import x from "../routes/a.ts";
/* import y from "../routes/b.ts"; */
const s = 'import z from "../routes/c.ts"';
const t = \`
import w from "../routes/d.ts";
\${"nested"} export * from "../routes/e.ts";
\`;
const r = /import v from "\\.\\.\\/routes"/g;
const q = a / b / c;
const m = import.meta.url;
export { s, t };
import real from "./real.ts";
`;
  assert.deepEqual(parseImports(src), [{ specifier: "./real.ts", line: 12 }]);
});

Deno.test("parseImports() stops a local export list at its closing brace", () => {
  const src = `export { a }
import b from "./b.ts";
`;
  assert.deepEqual(parseImports(src), [{ specifier: "./b.ts", line: 2 }]);
});

Deno.test("resolveSpecifier() resolves relative and absolute paths; packages stay unresolved", () => {
  assert.equal(resolveSpecifier("src/db/open.ts", "./db.ts"), "src/db/db.ts");
  assert.equal(resolveSpecifier("src/db/open.ts", "../../routes/x.ts"), "routes/x.ts");
  assert.equal(resolveSpecifier("main.ts", "./src/./a/../b.ts"), "src/b.ts");
  assert.equal(resolveSpecifier("src/a.ts", "/repo/tests/x.ts", "/repo"), "tests/x.ts");
  assert.equal(resolveSpecifier("src/a.ts", "file:///repo/routes/x.ts", "/repo"), "routes/x.ts");
  assert.equal(resolveSpecifier("src/a.ts", "../../outside.ts"), "../outside.ts");
  assert.equal(resolveSpecifier("src/a.ts", "hono"), undefined);
  assert.equal(resolveSpecifier("src/a.ts", "npm:zod@4"), undefined);
  assert.equal(resolveSpecifier("src/a.ts", "node:assert/strict"), undefined);
});

Deno.test("lintDeps() passes a tree that follows the rules", async () => {
  const result = await lintFixture({
    "main.ts": `import { app } from "./routes/app.ts";\nimport { netHosts } from "./scripts/p.ts";`,
    "routes/app.ts": `import { Hono } from "hono";\nimport { svc } from "../src/svc.ts";`,
    "src/svc.ts": `import { z } from "zod";\nimport type { Db } from "./db.ts";`,
    "src/db.ts": `export interface Db {}`,
    "scripts/p.ts": `import { svc } from "../src/svc.ts";`,
    "tests/svc_test.ts":
      `import { svc } from "../src/svc.ts";\nimport { h } from "./_helpers/h.ts";`,
    "tests/_helpers/h.ts": `import { app } from "../../routes/app.ts";`,
    "docs/ignored.ts": `import x from "../tests/svc_test.ts";`,
  });
  assert.deepEqual(result.violations, []);
  assert.equal(result.files, 7);
  assert.equal(result.edges.length, 10);
});

Deno.test("lintDeps() reports every forbidden edge with file and line", async () => {
  const result = await lintFixture({
    "main.ts": `import { t } from "./tests/_helpers/t.ts";`,
    "routes/a.ts": `\nimport { t } from "../tests/_fakes/f.ts";`,
    "src/a.ts": [
      `import { r } from "../routes/a.ts";`,
      `import { Hono } from "hono";`,
      `import { z } from "@hono/zod-openapi";`,
      `import { H } from "npm:hono@4";`,
      `import { t } from "../tests/_helpers/t.ts";`,
      `import { p } from "../scripts/permissions.ts";`,
      `const lazy = await import("../routes/b.ts");`,
    ].join("\n"),
    "tests/_helpers/t.ts": `export const t = 1;`,
  });
  assert.deepEqual(result.violations, [
    "main.ts:1: imports tests/_helpers/t.ts (production code must not import tests/)",
    "routes/a.ts:2: imports tests/_fakes/f.ts (production code must not import tests/)",
    "src/a.ts:1: imports routes/a.ts (src/ must not import routes/)",
    "src/a.ts:2: imports hono (src/ must not import hono)",
    "src/a.ts:3: imports @hono/zod-openapi (src/ must not import hono)",
    "src/a.ts:4: imports npm:hono@4 (src/ must not import hono)",
    "src/a.ts:5: imports tests/_helpers/t.ts (production code must not import tests/)",
    "src/a.ts:6: imports scripts/permissions.ts (src/ must not import scripts/)",
    "src/a.ts:7: imports routes/b.ts (src/ must not import routes/)",
  ]);
});

Deno.test("lintDeps() reports import cycles among src/ and routes/ with their path", async () => {
  const result = await lintFixture({
    "src/a.ts": `import { b } from "./b.ts";`,
    "src/b.ts": `import type { C } from "./c.ts";`,
    "src/c.ts": `import { a } from "./a.ts";`,
    "src/self.ts": `export * from "./self.ts";`,
    "routes/x.ts": `import { y } from "./y.ts";`,
    "routes/y.ts": `import { x } from "./x.ts";`,
    // Cycles outside src/ and routes/ are not this check's business.
    "tests/p.ts": `import { q } from "./q.ts";`,
    "tests/q.ts": `import { p } from "./p.ts";`,
  });
  assert.deepEqual(result.violations, [
    "import cycle: routes/x.ts -> routes/y.ts -> routes/x.ts",
    "import cycle: src/a.ts -> src/b.ts -> src/c.ts -> src/a.ts",
    "import cycle: src/self.ts -> src/self.ts",
  ]);
});

Deno.test("findCycles() returns the shortest cycle through the first file of each component", () => {
  const edge = (from: string, to: string): ImportEdge => ({ from, to, specifier: to, line: 1 });
  const cycles = findCycles([
    edge("src/a.ts", "src/b.ts"),
    edge("src/b.ts", "src/c.ts"),
    edge("src/c.ts", "src/d.ts"),
    edge("src/d.ts", "src/a.ts"),
    edge("src/b.ts", "src/a.ts"),
    edge("src/d.ts", "src/e.ts"),
  ]);
  assert.deepEqual(cycles, [["src/a.ts", "src/b.ts", "src/a.ts"]]);
});
