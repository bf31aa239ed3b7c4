import assert from "node:assert/strict";
import { auditMocks, findMarkers, MARKER } from "../../scripts/audit_mocks.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("MARKER matches each marker word in any case, on word boundaries", () => {
  const hits = [
    "a Mock server",
    "stub",
    "FAKE data",
    "noop",
    "a no-op handler",
    "dummy",
    "placeholder",
    "Not Implemented yet",
    "unimplemented",
    "simulate",
    "simulated",
    "a simulation",
    "TODO(ana): later",
    "FIXME",
    "XXX",
  ];
  for (const text of hits) assert.ok(MARKER.test(text), text);
  const misses = [
    "mockingbird",
    "stubborn",
    "fakery",
    "placeholders",
    "implemented",
    "todos",
    "xxxl",
  ];
  for (const text of misses) assert.ok(!MARKER.test(text), text);
});

Deno.test("findMarkers() reports 1-based lines with the trimmed text", () => {
  assert.deepEqual(findMarkers("src/a.ts", "ok\n  // TODO: later  \nfine\nconst fake = 1;"), [
    { path: "src/a.ts", line: 2, text: "// TODO: later" },
    { path: "src/a.ts", line: 4, text: "const fake = 1;" },
  ]);
  assert.deepEqual(findMarkers("src/a.ts", "clean\n"), []);
});

Deno.test("auditMocks() scans main.ts, src/ and routes/ (.ts and .sql) and nothing else", async () => {
  const root = await Deno.makeTempDir({ prefix: "anya-audit-" });
  try {
    const files: Record<string, string> = {
      "main.ts": "// noop\n",
      "src/db/migrations/0002_x.sql": "-- placeholder table\nCREATE TABLE t ();\n",
      "src/z/deep.ts": "export const a = 1;\nexport const b = 'stub';\n",
      "src/clean.ts": "export const clean = true;\n",
      "src/notes.md": "mock\n",
      "routes/r.ts": "throw new Error('not implemented');\n",
      "tests/_fakes/fake_backend.ts": "export class FakeBackend {}\n",
      "scripts/s.ts": "// TODO\n",
    };
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(`${root}/${path.split("/").slice(0, -1).join("/") || "."}`, {
        recursive: true,
      });
      await Deno.writeTextFile(`${root}/${path}`, text);
    }
    assert.deepEqual(
      (await auditMocks(root)).map((h) => `${h.path}:${h.line}: ${h.text}`),
      [
        "main.ts:1: // noop",
        "routes/r.ts:1: throw new Error('not implemented');",
        "src/db/migrations/0002_x.sql:1: -- placeholder table",
        "src/z/deep.ts:2: export const b = 'stub';",
      ],
    );

    const run = await new Deno.Command("deno", {
      args: ["run", "--no-config", "--allow-read=.", `${ROOT}scripts/audit_mocks.ts`],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 1);
    const lines = new TextDecoder().decode(run.stderr).trimEnd().split("\n");
    assert.equal(lines[0], "audit:mocks: 4 hit(s)");
    assert.equal(lines[1], "main.ts:1: // noop");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("auditMocks() finds nothing in an empty tree", async () => {
  const root = await Deno.makeTempDir({ prefix: "anya-audit-" });
  try {
    assert.deepEqual(await auditMocks(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
