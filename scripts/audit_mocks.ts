/**
 * `deno task audit:mocks`: production code (`main.ts`, `hsm_main.ts`, `src/`, `routes/`, their
 * `.ts` and `.sql` files) must carry no sign of a test double or unfinished
 * work. Counts every marker word, prints each hit as `path:line: text`, and
 * fails when there is any. Test doubles belong under `tests/`.
 *
 * @module
 */
import { listFiles } from "./_files.ts";
import { writeLine } from "./_io.ts";

/** The marker words, case-insensitive, on word boundaries. */
export const MARKER =
  /\b(mock|stub|fake|noop|no-op|dummy|placeholder|not implemented|unimplemented|simulat(e|ed|ion)|TODO|FIXME|XXX)\b/i;

/** One marker occurrence. */
export interface AuditHit {
  /** Root-relative, `/`-separated. */
  path: string;
  /** 1-based line number. */
  line: number;
  /** The whole line, trimmed. */
  text: string;
}

const ROOTS = ["main.ts", "hsm_main.ts", "src", "routes"];
const AUDITED_EXT = /\.(ts|sql)$/;

/**
 * The lines of `source` that contain a marker.
 *
 * @param path reported path
 * @param source file contents
 */
export function findMarkers(path: string, source: string): AuditHit[] {
  const hits: AuditHit[] = [];
  source.split("\n").forEach((text, i) => {
    if (MARKER.test(text)) hits.push({ path, line: i + 1, text: text.trim() });
  });
  return hits;
}

/**
 * Audit the production files under `root`.
 *
 * @param root repository root
 * @returns every hit, ordered by path and line
 */
export async function auditMocks(root: string): Promise<AuditHit[]> {
  const files = await listFiles(root, ROOTS, AUDITED_EXT);
  const hits: AuditHit[] = [];
  for (const file of files) {
    hits.push(...findMarkers(file, await Deno.readTextFile(`${root}/${file}`)));
  }
  return hits;
}

/**
 * Run the audit on the working directory and report.
 *
 * @returns 0 without hits, 1 otherwise
 */
export async function main(): Promise<number> {
  const hits = await auditMocks(".");
  const lines = [
    `audit:mocks: ${hits.length} hit(s)`,
    ...hits.map((h) => `${h.path}:${h.line}: ${h.text}`),
  ];
  await writeLine(hits.length > 0 ? Deno.stderr : Deno.stdout, lines.join("\n"));
  return hits.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
