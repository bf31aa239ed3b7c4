import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { loadConfig } from "../../src/config/mod.ts";
import { flagsFor } from "../../scripts/start.ts";
import { loadHsmConfig } from "../../src/hsm_server/config.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TASKS: Record<string, string> = denoJson.tasks;

/** Tasks that need every variable: the launcher (to load the config) and the test runner. */
const UNSCOPED_ENV = new Set([
  "start",
  "start:flags",
  "dev",
  "compile",
  "db:migrate",
  "keys:create",
  "data-key:rotate",
  "pki:dev",
  "hsm",
  "compile:hsm",
  "test",
]);

/** The instruction's JSON-array argument, e.g. `CMD ["deno", "run"]`. */
function execForm(dockerfile: string, instruction: string): string[] {
  const joined = dockerfile.replaceAll(/\\\n\s*/g, " ");
  const line = joined.split("\n").find((l) => l.startsWith(`${instruction} `));
  assert.ok(line !== undefined, `no ${instruction}`);
  const json = line.slice(line.indexOf("["));
  return JSON.parse(json);
}

Deno.test("deno.json tasks never grant everything", () => {
  for (const [name, command] of Object.entries(TASKS)) {
    const words = command.split(/\s+/);
    assert.ok(!words.includes("-A") && !words.includes("--allow-all"), name);
    for (const word of words.filter((w) => w.startsWith("--allow-"))) {
      if (word === "--allow-env" && UNSCOPED_ENV.has(name)) continue;
      assert.ok(word.includes("="), `${name}: ${word} must name what it allows`);
    }
  }
});

Deno.test("tasks that run project code go through the launcher", () => {
  for (
    const name of [
      "start",
      "compile",
      "db:migrate",
      "keys:create",
      "data-key:rotate",
      "pki:dev",
      "hsm",
    ]
  ) {
    assert.match(
      TASKS[name] ?? "",
      /^(LOG_LEVEL=debug )?deno run --frozen --allow-env --allow-run=deno scripts\/start\.ts (run|compile) /,
      name,
    );
  }
});

Deno.test("Dockerfile runs the launcher exactly as `deno task start` does", async () => {
  const dockerfile = await Deno.readTextFile(`${ROOT}Dockerfile`);
  assert.deepEqual(execForm(dockerfile, "CMD"), (TASKS.start ?? "").split(" "));
});

Deno.test("Dockerfile pins the Deno version CI installs and grants the image's config", async () => {
  const dockerfile = await Deno.readTextFile(`${ROOT}Dockerfile`);
  const ci = await Deno.readTextFile(`${ROOT}.ci/run`);
  const pinned = ci.match(/^DENO_VERSION=(\S+)$/m)?.[1];
  assert.ok(pinned !== undefined);
  assert.match(
    dockerfile,
    new RegExp(`^FROM denoland/deno:${pinned.replaceAll(".", "\\.")}$`, "m"),
  );

  const env = Object.fromEntries(
    [...(dockerfile.match(/^ENV (.+)$/m)?.[1] ?? "").matchAll(/(\w+)=(\S+)/g)].map((
      m,
    ) => [m[1], m[2]]),
  );
  assert.deepEqual(env, { HOST: "0.0.0.0", ANYA_DATA_DIR: "/app/data" });
  const flags = flagsFor(loadConfig(env), "run");
  assert.ok(flags.includes("--allow-net=0.0.0.0:8080"), flags.join(" "));
  assert.ok(flags.includes("--allow-write=/app/data"), flags.join(" "));
  assert.match(dockerfile, /^EXPOSE 8080$/m);
});

Deno.test("Dockerfile health check uses deno with scoped flags only", async () => {
  const check = execForm(await Deno.readTextFile(`${ROOT}Dockerfile`), "HEALTHCHECK");
  assert.equal(check[0], "deno");
  for (const word of check.filter((w) => w.startsWith("--allow-"))) {
    assert.ok(word.includes("="), word);
  }
  assert.ok(check.includes("--allow-net=127.0.0.1"));
});

Deno.test(".dockerignore keeps local state out of the image", async () => {
  const ignored = (await Deno.readTextFile(`${ROOT}.dockerignore`)).split("\n").map((l) =>
    l.trim()
  );
  for (const entry of [".git", "data/", "node_modules/", "coverage/"]) {
    assert.ok(ignored.includes(entry), entry);
  }
});

Deno.test("dev runs the edge and the HSM through the launcher, itself with env and deno only", async () => {
  assert.equal(TASKS.dev, "deno run --frozen --allow-env --allow-run=deno scripts/dev.ts");
  const source = await Deno.readTextFile(new URL("../../scripts/dev.ts", import.meta.url));
  assert.match(source, /"hsm_main\.ts"/);
  assert.match(source, /launch\("main\.ts", vars\.edge\)/);
});

Deno.test("Dockerfile.hsm runs the launcher as `deno task hsm` does, on the image's config", async () => {
  const dockerfile = await Deno.readTextFile(`${ROOT}Dockerfile.hsm`);
  const edge = await Deno.readTextFile(`${ROOT}Dockerfile`);
  assert.deepEqual(execForm(dockerfile, "CMD"), (TASKS.hsm ?? "").split(" "));
  assert.equal(dockerfile.match(/^FROM .+$/m)?.[0], edge.match(/^FROM .+$/m)?.[0]);
  const env = Object.fromEntries(
    [...(dockerfile.match(/^ENV (.+)$/m)?.[1] ?? "").matchAll(/(\w+)=(\S+)/g)].map((m) => [
      m[1],
      m[2],
    ]),
  );
  // The allowlist is the deployer's to give; the rest is the image's.
  const flags = flagsFor(loadHsmConfig({ ...env, HSM_CLIENT_ALLOWLIST: "edge=acme" }), "run");
  assert.ok(flags.includes("--allow-net=0.0.0.0:8443"), flags.join(" "));
  assert.ok(flags.includes("--allow-write=/app/data"), flags.join(" "));
  assert.match(dockerfile, /^EXPOSE 8443$/m);
  const check = execForm(dockerfile, "HEALTHCHECK");
  assert.deepEqual(check.slice(-2), ["scripts/healthcheck.ts", "tcp"]);
  for (const word of check.filter((w) => w.startsWith("--allow-"))) assert.ok(word.includes("="));
  assert.ok(TASKS["compile:hsm"]?.includes("compile hsm_main.ts --output dist/anya-hsm"));
});
