import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

async function migrateTask(env: Record<string, string>) {
  const base: Record<string, string> = { NO_COLOR: "1" };
  for (const k of ["PATH", "HOME", "DENO_DIR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) base[k] = v;
  }
  const out = await new Deno.Command("deno", {
    args: ["task", "--quiet", "db:migrate"],
    cwd: ROOT,
    env: { ...base, ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "deno task db:migrate applies pending migrations once, then finds none",
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "anya-migrate-" });
    try {
      const first = await migrateTask({ ANYA_DATA_DIR: dataDir });
      assert.equal(first.code, 0, first.stderr);
      assert.match(
        first.stdout,
        /^db:migrate: pglite schema at version (\d+) \(applied 1(, \d+)*\)\n$/,
      );
      const second = await migrateTask({ ANYA_DATA_DIR: dataDir });
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /^db:migrate: pglite schema at version \d+ \(none pending\)\n$/);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test("deno task db:migrate fails with a redacted reason when the database is unreachable", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "anya-migrate-" });
  try {
    const r = await migrateTask({
      ANYA_DATA_DIR: dataDir,
      DATABASE_URL: "postgres://anya:hunter2@127.0.0.1:1/anya",
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^db:migrate: /m);
    assert.doesNotMatch(r.stderr, /hunter2/);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
