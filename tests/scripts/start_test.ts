import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/mod.ts";
import {
  DEFAULT_OUTPUT,
  denoArgs,
  flagsFor,
  type LaunchArgs,
  parseLaunchArgs,
  shellJoin,
} from "../../scripts/start.ts";
import { UsageError } from "../../scripts/_cli.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const LAUNCHER = ["run", "--frozen", "--allow-env", "--allow-run=deno", "scripts/start.ts"];

function launch(overrides: Partial<LaunchArgs>): LaunchArgs {
  return {
    mode: "run",
    script: "main.ts",
    printFlags: false,
    watch: false,
    output: DEFAULT_OUTPUT,
    scriptArgs: [],
    ...overrides,
  };
}

/** Environment for a child `deno`: enough to find its cache, nothing of ours. */
function childEnv(config: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1", ...config };
  for (const k of ["PATH", "HOME", "DENO_DIR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}

function spawnLauncher(args: string[], config: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command("deno", {
    args: [...LAUNCHER, ...args],
    cwd: ROOT,
    env: childEnv(config),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function runLauncher(args: string[], config: Record<string, string>) {
  const out = await spawnLauncher(args, config).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("parseLaunchArgs() separates launcher options from the script's arguments", () => {
  assert.deepEqual(
    parseLaunchArgs([
      "run",
      "main.ts",
      "--print-flags",
      "--watch",
      "--tenant",
      "acme",
      "--",
      "--watch",
    ]),
    launch({ printFlags: true, watch: true, scriptArgs: ["--tenant", "acme", "--watch"] }),
  );
  assert.deepEqual(
    parseLaunchArgs(["run", "scripts/db_migrate.ts"]),
    launch({ script: "scripts/db_migrate.ts" }),
  );
  assert.deepEqual(
    parseLaunchArgs(["compile", "main.ts", "--output", "out/bin"]),
    launch({ mode: "compile", output: "out/bin" }),
  );
  assert.deepEqual(
    parseLaunchArgs(["compile", "main.ts", "--output=out/bin", "--print-flags"]),
    launch({ mode: "compile", output: "out/bin", printFlags: true }),
  );
});

Deno.test("parseLaunchArgs() rejects a missing mode or script and options compile does not take", () => {
  for (
    const args of [
      [],
      ["serve", "main.ts"],
      ["run"],
      ["run", "--watch"],
      ["compile", "main.ts", "--watch"],
      ["compile", "main.ts", "--output"],
      ["compile", "main.ts", "extra"],
    ]
  ) {
    assert.throws(() => parseLaunchArgs(args), UsageError, JSON.stringify(args));
  }
});

Deno.test("denoArgs() runs frozen and without prompts, flags before the script", () => {
  const flags = ["--allow-env=HOST", "--ignore-env"];
  const options = { configFile: "/app/deno.json" };
  assert.deepEqual(denoArgs(launch({ watch: true, scriptArgs: ["a"] }), flags, options), [
    "run",
    "--frozen",
    "--no-prompt",
    "--config",
    "/app/deno.json",
    "--watch",
    "--allow-env=HOST",
    "--ignore-env",
    "main.ts",
    "a",
  ]);
  assert.deepEqual(denoArgs(launch({ mode: "compile" }), flags, options), [
    "compile",
    "--frozen",
    "--no-prompt",
    "--config",
    "/app/deno.json",
    "--allow-env=HOST",
    "--ignore-env",
    "--output",
    "dist/anya-edge",
    "main.ts",
  ]);
  const withWasm = denoArgs(launch({ mode: "compile" }), flags, {
    ...options,
    include: ["/x/a.wasm"],
  });
  assert.deepEqual(
    withWasm.slice(7, 9),
    ["--include", "/x/a.wasm"],
    "embedded files come before --output",
  );
});

Deno.test("flagsFor() grants read of PGlite's real package directory when running from source", async () => {
  const flags = flagsFor(loadConfig({}), "run");
  const read = flags.find((f) => f.startsWith("--allow-read="));
  assert.ok(read !== undefined);
  const pglite = read.split(",").find((p) => p.endsWith("/@electric-sql/pglite")) ?? "";
  assert.ok(pglite !== "", read);
  const ort = read.split(",").at(-1) ?? "";
  assert.ok(ort.endsWith("/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm"), ort);
  assert.ok((await Deno.stat(ort)).isFile);
  const pkg = JSON.parse(await Deno.readTextFile(`${pglite}/package.json`));
  assert.equal(pkg.name, "@electric-sql/pglite");
  assert.ok(!flagsFor(loadConfig({}), "compile").some((f) => f.includes("pglite")));
});

Deno.test("shellJoin() quotes only what a shell would split or expand", () => {
  assert.equal(
    shellJoin(["--allow-read=./a,/b", "x y", "it's", "$HOME"]),
    `--allow-read=./a,/b 'x y' 'it'\\''s' '$HOME'`,
  );
});

Deno.test("start.ts --print-flags prints the flags computed from the environment", async () => {
  const config = {
    PORT: "9123",
    ANYA_DATA_DIR: "/srv/anya",
    DATABASE_URL: "postgres://u@db:6543/x",
  };
  const r = await runLauncher(["run", "main.ts", "--print-flags"], config);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${shellJoin(flagsFor(loadConfig(config), "run"))}\n`);
  assert.match(r.stdout, /--allow-net=127\.0\.0\.1:9123,db:6543\s/);
  assert.match(r.stdout, /--allow-write=\/srv\/anya\s/);
});

Deno.test("start.ts exits 2 and names the variable when the config is invalid", async () => {
  const r = await runLauncher(["run", "main.ts"], { PORT: "eighty" });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /PORT: must be a whole number/);
  assert.doesNotMatch(r.stderr, /eighty/);
});

/** A script that opens the configured database, then tries what it must not be able to do. */
function probeSource(tmp: string): string {
  return `import { loadConfig } from "${ROOT}src/config/load.ts";
import { migrate, MIGRATIONS, openDb } from "${ROOT}src/db/mod.ts";
const denied = async (f: () => unknown) => {
  try { await f(); return false; } catch (e) { return e instanceof Deno.errors.NotCapable; }
};
const config = loadConfig(Deno.env.toObject());
const db = await openDb(config.db);
// PGlite gets a fresh data dir; the shared PostgreSQL is only asked to answer.
const ok = config.db.kind === "pglite"
  ? (await migrate(db, MIGRATIONS)).version > 0
  : (await db.query("SELECT 1 AS one")).length === 1;
await db.close();
const listener = Deno.listen({ hostname: config.server.host, port: config.server.port });
listener.close();
const result = {
  ok,
  args: Deno.args,
  home: Deno.env.get("HOME") ?? null,
  pgPassword: Deno.env.get("PGPASSWORD") ?? null,
  readRepo: await denied(() => Deno.readTextFile("${ROOT}deno.json")),
  writeOutside: await denied(() => Deno.writeTextFile("${tmp}/outside.txt", "x")),
  otherHost: await denied(() => Deno.connect({ hostname: "127.0.0.1", port: 1 })),
  run: await denied(() => new Deno.Command("deno").output()),
  sys: await denied(() => Deno.hostname()),
};
await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(result)));
`;
}

const POSTGRES_TEST_URL = Deno.env.get("DATABASE_URL_TEST") || undefined;

for (const kind of ["pglite", "postgres"] as const) {
  Deno.test({
    name: `start.ts runs a script with exactly the computed permissions [${kind}]`,
    ignore: kind === "postgres" && POSTGRES_TEST_URL === undefined,
    sanitizeResources: false,
    async fn() {
      const tmp = await Deno.makeTempDir({ prefix: "anya-start-" });
      try {
        const probe = `${tmp}/probe.ts`;
        await Deno.writeTextFile(probe, probeSource(tmp));
        const dataDir = `${tmp}/data/nested`;
        const r = await runLauncher(["run", probe, "one", "--two"], {
          ANYA_DATA_DIR: dataDir,
          PORT: "0",
          // Read by the postgres client if it could; --ignore-env hides them.
          PGPASSWORD: "wrong",
          PGHOST: "nowhere.invalid",
          ...(kind === "postgres" ? { DATABASE_URL: POSTGRES_TEST_URL as string } : {}),
        });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), {
          ok: true,
          args: ["one", "--two"],
          home: null,
          pgPassword: null,
          readRepo: true,
          writeOutside: true,
          otherHost: true,
          run: true,
          sys: true,
        });
        // The launcher created the data dir, private to the service user.
        assert.equal(((await Deno.stat(dataDir)).mode ?? 0) & 0o777, 0o700);
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "start.ts forwards SIGTERM once and exits with the child's code",
  ignore: Deno.build.os === "windows",
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "anya-start-" });
    try {
      const script = `${tmp}/child.ts`;
      await Deno.writeTextFile(
        script,
        `let n = 0;
Deno.addSignalListener("SIGTERM", () => {
  n++;
  setTimeout(() => { Deno.stdout.writeSync(new TextEncoder().encode("signals=" + n)); Deno.exit(7); }, 200);
});
Deno.stdout.writeSync(new TextEncoder().encode("ready\\n"));
setTimeout(() => {}, 60_000);
`,
      );
      const child = spawnLauncher(["run", script], { ANYA_DATA_DIR: `${tmp}/data` });
      const reader = child.stdout.getReader();
      const dec = new TextDecoder();
      let out = "";
      while (!out.includes("ready")) {
        const chunk = await reader.read();
        if (chunk.done) break;
        out += dec.decode(chunk.value);
      }
      child.kill("SIGTERM");
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        out += dec.decode(chunk.value);
      }
      await child.stderr.cancel();
      const status = await child.status;
      assert.equal(status.code, 7);
      assert.match(out, /signals=1$/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
