/**
 * `deno task lint:deps`: enforce the one-way dependency rules of STYLE.md §2
 * on every `.ts` file under `main.ts`, `hsm_main.ts`, `src/`, `routes/`, `scripts/` and `tests/`.
 *
 * Fails on:
 * - `src/` importing `routes/`, `scripts/`, `hono` or `@hono/*`;
 * - `src/`, `routes/` or `main.ts` importing `tests/`;
 * - import cycles among `src/` and `routes/` files (type-only imports included).
 *
 * Imports are read with a small lexer (comments, strings, template literals
 * and regular expressions are skipped), so import-like text inside a string
 * is not an import.
 *
 * @module
 */
import { listFiles } from "./_files.ts";
import { writeLine } from "./_io.ts";

/** One import found in a source file. */
export interface ImportRef {
  /** The specifier as written. */
  specifier: string;
  /** 1-based line of the specifier. */
  line: number;
}

/** One resolved import edge between repository files (or to a package). */
export interface ImportEdge {
  /** Importing file, relative to the root, `/`-separated. */
  from: string;
  /** The specifier as written. */
  specifier: string;
  /** Imported file relative to the root, or `undefined` for a package specifier. */
  to: string | undefined;
  /** 1-based line of the specifier. */
  line: number;
}

/** Outcome of {@linkcode lintDeps}. */
export interface LintDepsResult {
  /** Number of source files scanned. */
  files: number;
  /** Every import found. */
  edges: ImportEdge[];
  /** One message per forbidden edge or cycle; empty when the tree is clean. */
  violations: string[];
}

const ROOTS = ["main.ts", "hsm_main.ts", "src", "routes", "scripts", "tests"];
const SOURCE_EXT = /\.(ts|tsx|mts)$/;
const REGEX_AFTER_KEYWORD = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
]);

type TokenType = "id" | "str" | "punct" | "other";
interface Token {
  type: TokenType;
  value: string;
  line: number;
}

/**
 * Find the static (`import … from`, `import "…"`, `export … from`) and dynamic
 * (`import("…")`) imports in TypeScript source.
 *
 * @param source file contents
 * @returns specifiers with their 1-based line numbers, in source order
 */
export function parseImports(source: string): ImportRef[] {
  const tokens = tokenize(source);
  const refs: ImportRef[] = [];
  const at = (i: number): Token | undefined => tokens[i];
  const isPunct = (t: Token | undefined, v: string) => t?.type === "punct" && t.value === v;
  const isId = (t: Token | undefined, v: string) => t?.type === "id" && t.value === v;
  /** From `start`, look for `from "<spec>"` before the statement ends. */
  const findFrom = (start: number): Token | undefined => {
    let depth = 0;
    for (let j = start; j < tokens.length && j < start + 500; j++) {
      const t = tokens[j] as Token;
      if (isPunct(t, "{")) depth++;
      else if (isPunct(t, "}")) {
        depth--;
        // `export { a }` with no `from`: the statement ends here.
        if (depth === 0 && !isId(at(j + 1), "from")) return;
      } else if (depth > 0) continue;
      else if (isId(t, "from") && at(j + 1)?.type === "str") return at(j + 1);
      else if (isPunct(t, ";") || isPunct(t, "=") || isPunct(t, "(")) return;
      else if (isId(t, "import") || isId(t, "export")) return;
      if (depth < 0) return;
    }
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.type !== "id" || isPunct(at(i - 1), ".")) continue;
    const next = at(i + 1);
    if (t.value === "import") {
      if (isPunct(next, "(")) {
        const spec = at(i + 2);
        if (spec?.type === "str" && (isPunct(at(i + 3), ")") || isPunct(at(i + 3), ","))) {
          refs.push({ specifier: spec.value, line: spec.line });
        }
      } else if (next?.type === "str") {
        refs.push({ specifier: next.value, line: next.line });
      } else if (next !== undefined && !isPunct(next, ".")) {
        const spec = findFrom(i + 1);
        if (spec !== undefined) refs.push({ specifier: spec.value, line: spec.line });
      }
    } else if (t.value === "export") {
      const first = isId(next, "type") ? at(i + 2) : next;
      if (isPunct(first, "*") || isPunct(first, "{")) {
        const spec = findFrom(i + 1);
        if (spec !== undefined) refs.push({ specifier: spec.value, line: spec.line });
      }
    }
  }
  return refs;
}

/** Split source into identifiers, string literals and punctuation, dropping the rest. */
function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  // `{` and `${` still open; a `}` closing a `${` resumes its template literal.
  const braces: ("brace" | "template")[] = [];
  const push = (type: TokenType, value: string, at: number) =>
    tokens.push({ type, value, line: at });
  const regexAllowed = () => {
    const prev = tokens.at(-1);
    if (prev === undefined) return true;
    if (prev.type === "punct") return prev.value !== ")" && prev.value !== "]";
    return prev.type === "id" && REGEX_AFTER_KEYWORD.has(prev.value);
  };
  /** Scan template text from `i` (after "`" or a closing `}`) to "`" or "${". */
  const template = () => {
    const start = line;
    while (i < src.length) {
      const c = src[i];
      if (c === "\\") {
        i += 2;
        continue;
      }
      if (c === "\n") line++;
      if (c === "`") {
        i++;
        push("other", "`", start);
        return;
      }
      if (c === "$" && src[i + 1] === "{") {
        i += 2;
        braces.push("template");
        push("other", "`", start);
        return;
      }
      i++;
    }
  };
  while (i < src.length) {
    const c = src[i] as string;
    const d = src[i + 1];
    if (c === "\n") {
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "/" && d === "/") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && d === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === "\n") line++;
      i = stop;
    } else if (c === "'" || c === '"') {
      const start = line;
      let value = "";
      i++;
      while (i < src.length && src[i] !== c && src[i] !== "\n") {
        if (src[i] === "\\") {
          value += src[i + 1] ?? "";
          i += 2;
        } else {
          value += src[i];
          i++;
        }
      }
      i++;
      push("str", value, start);
    } else if (c === "`") {
      i++;
      template();
    } else if (c === "{") {
      braces.push("brace");
      push("punct", c, line);
      i++;
    } else if (c === "}") {
      i++;
      if (braces.pop() === "template") template();
      else push("punct", c, line);
    } else if (c === "/" && regexAllowed() && scanRegex()) {
      push("other", "/regex/", line);
    } else if (/[A-Za-z_$#\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\w$\u0080-\uffff]/.test(src[j] as string)) j++;
      push("id", src.slice(i, j), line);
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\w.]/.test(src[j] as string)) j++;
      push("other", src.slice(i, j), line);
      i = j;
    } else {
      push("punct", c, line);
      i++;
    }
  }
  return tokens;

  /** Consume a regex literal at `i` if one closes on this line; else consume nothing. */
  function scanRegex(): boolean {
    let j = i + 1;
    let inClass = false;
    while (j < src.length && src[j] !== "\n") {
      const c = src[j];
      if (c === "\\") j += 2;
      else if (c === "[") (inClass = true, j++);
      else if (c === "]") (inClass = false, j++);
      else if (c === "/" && !inClass) {
        j++;
        while (j < src.length && /[a-z]/.test(src[j] as string)) j++;
        i = j;
        return true;
      } else j++;
    }
    return false;
  }
}

/**
 * Resolve a specifier written in `from` to a root-relative path; `undefined`
 * for package specifiers (`hono`, `npm:…`, `node:…`).
 *
 * @param from importing file, root-relative
 * @param specifier as written
 * @param root absolute root directory (for absolute specifiers)
 */
export function resolveSpecifier(from: string, specifier: string, root = "/"): string | undefined {
  let path: string;
  if (specifier.startsWith("./") || specifier.startsWith("../")) {
    const dir = from.split("/").slice(0, -1).join("/");
    path = dir === "" ? specifier : `${dir}/${specifier}`;
  } else if (specifier.startsWith("/") || specifier.startsWith("file:")) {
    const abs = specifier.startsWith("file:")
      ? decodeURIComponent(new URL(specifier).pathname)
      : specifier;
    const base = root.endsWith("/") ? root : `${root}/`;
    path = abs.startsWith(base) ? abs.slice(base.length) : `/${abs}`;
  } else {
    return undefined;
  }
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === ".." && out.length > 0 && out.at(-1) !== "..") out.pop();
    else out.push(part);
  }
  return (path.startsWith("/") ? "/" : "") + out.join("/");
}

type Area = "main" | "src" | "routes" | "scripts" | "tests" | "other";

function areaOf(path: string): Area {
  // Both composition roots: the edge and the HSM signer.
  if (path === "main.ts" || path === "hsm_main.ts") return "main";
  const top = path.split("/")[0];
  return top === "src" || top === "routes" || top === "scripts" || top === "tests" ? top : "other";
}

function isHono(specifier: string): boolean {
  const bare = specifier.replace(/^npm:\/?/, "");
  return bare === "hono" || bare.startsWith("hono/") || bare.startsWith("hono@") ||
    bare.startsWith("@hono/");
}

/**
 * The forbidden edges among `edges`, one message each.
 *
 * @param edges resolved imports
 * @returns messages like `src/a.ts:3: imports routes/b.ts (src/ must not import routes/)`
 */
export function forbiddenEdges(edges: readonly ImportEdge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const from = areaOf(e.from);
    const to = e.to === undefined ? undefined : areaOf(e.to);
    const where = `${e.from}:${e.line}: imports ${e.to ?? e.specifier}`;
    if (from === "src" && to === "routes") out.push(`${where} (src/ must not import routes/)`);
    if (from === "src" && to === "scripts") out.push(`${where} (src/ must not import scripts/)`);
    if (from === "src" && e.to === undefined && isHono(e.specifier)) {
      out.push(`${where} (src/ must not import hono)`);
    }
    if ((from === "src" || from === "routes" || from === "main") && to === "tests") {
      out.push(`${where} (production code must not import tests/)`);
    }
  }
  return out;
}

/**
 * Import cycles among `src/` and `routes/` files: one cycle per strongly
 * connected component, starting at its alphabetically first file.
 *
 * @param edges resolved imports
 * @returns each cycle as a path that ends where it starts
 */
export function findCycles(edges: readonly ImportEdge[]): string[][] {
  const inScope = (p: string) => areaOf(p) === "src" || areaOf(p) === "routes";
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    if (e.to === undefined || !inScope(e.from) || !inScope(e.to)) continue;
    if (!graph.has(e.to)) graph.set(e.to, new Set());
    const targets = graph.get(e.from) ?? new Set<string>();
    targets.add(e.to);
    graph.set(e.from, targets);
  }
  const cycles: string[][] = [];
  for (const component of stronglyConnected(graph)) {
    const start = [...component].sort()[0] as string;
    const selfLoop = graph.get(start)?.has(start) ?? false;
    if (component.size < 2 && !selfLoop) continue;
    cycles.push(selfLoop ? [start, start] : shortestCycle(graph, component, start));
  }
  return cycles.sort((a, b) => (a[0] as string).localeCompare(b[0] as string));
}

/** Tarjan's algorithm, iterative. */
function stronglyConnected(graph: Map<string, Set<string>>): Set<string>[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const result: Set<string>[] = [];
  let counter = 0;
  for (const root of [...graph.keys()].sort()) {
    if (index.has(root)) continue;
    const work: { node: string; next: string[] }[] = [];
    const enter = (node: string) => {
      index.set(node, counter);
      low.set(node, counter);
      counter++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, next: [...(graph.get(node) ?? [])].sort() });
    };
    enter(root);
    while (work.length > 0) {
      const frame = work.at(-1) as { node: string; next: string[] };
      const child = frame.next.shift();
      if (child !== undefined) {
        if (!index.has(child)) enter(child);
        else if (onStack.has(child)) {
          low.set(frame.node, Math.min(low.get(frame.node) ?? 0, index.get(child) ?? 0));
        }
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent !== undefined) {
        low.set(parent.node, Math.min(low.get(parent.node) ?? 0, low.get(frame.node) ?? 0));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component = new Set<string>();
        let member: string;
        do {
          member = stack.pop() as string;
          onStack.delete(member);
          component.add(member);
        } while (member !== frame.node);
        result.push(component);
      }
    }
  }
  return result;
}

/** Breadth-first: the shortest path from `start` back to itself inside `component`. */
function shortestCycle(
  graph: Map<string, Set<string>>,
  component: Set<string>,
  start: string,
): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift() as string;
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      if (!component.has(next)) continue;
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0] as string) as string);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}

/**
 * Check the dependency rules on the tree under `root`.
 *
 * @param root repository root (absolute or relative to the working directory)
 * @returns files scanned, every edge found and the violations
 */
export async function lintDeps(root: string): Promise<LintDepsResult> {
  const absRoot = root.startsWith("/") ? root : `${Deno.cwd()}/${root}`;
  const files = await listFiles(root, ROOTS, SOURCE_EXT);
  const edges: ImportEdge[] = [];
  for (const file of files) {
    const source = await Deno.readTextFile(`${root}/${file}`);
    for (const ref of parseImports(source)) {
      edges.push({
        from: file,
        specifier: ref.specifier,
        to: resolveSpecifier(file, ref.specifier, absRoot),
        line: ref.line,
      });
    }
  }
  const violations = [
    ...forbiddenEdges(edges),
    ...findCycles(edges).map((c) => `import cycle: ${c.join(" -> ")}`),
  ];
  return { files: files.length, edges, violations };
}

/**
 * Run the check on the working directory and report.
 *
 * @returns 0 when clean, 1 with one line per violation otherwise
 */
export async function main(): Promise<number> {
  const result = await lintDeps(".");
  if (result.violations.length > 0) {
    await writeLine(Deno.stderr, result.violations.join("\n"));
    await writeLine(Deno.stderr, `lint:deps: ${result.violations.length} violation(s)`);
    return 1;
  }
  await writeLine(
    Deno.stdout,
    `lint:deps: ok (${result.files} files, ${result.edges.length} imports; no forbidden edges, no cycles)`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
