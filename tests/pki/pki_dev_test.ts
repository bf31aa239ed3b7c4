/**
 * `scripts/pki_dev.ts` run as a real process with narrow permission flags, and
 * through the launcher the way the `pki:dev` task runs it.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "@peculiar/x509";
import { certificateInfo } from "../../src/pki/mod.ts";
import { parsePkiDevArgs, pkiDevEnv, pkiDir, writeDevPki } from "../../scripts/pki_dev.ts";
import { UsageError } from "../../scripts/_cli.ts";
import { fetchWith, startMtlsServer } from "../_helpers/pki.ts";
import { runDeno } from "../_helpers/server.ts";

const FILES = [
  "ca.crt",
  "ca.key",
  "hsm-server.crt",
  "hsm-server.key",
  "edge-client.crt",
  "edge-client.key",
];

/** Run the script directly, granted the data dir and `ANYA_DATA_DIR` only. */
function runPkiDev(dataDir: string, args: string[] = []) {
  return runDeno([
    "run",
    "--frozen",
    "--no-prompt",
    "--allow-env=ANYA_DATA_DIR",
    `--allow-read=${dataDir}`,
    `--allow-write=${dataDir}`,
    "scripts/pki_dev.ts",
    ...args,
  ], { ANYA_DATA_DIR: dataDir });
}

async function readAll(dir: string): Promise<Record<string, string>> {
  return Object.fromEntries(
    await Promise.all(FILES.map(async (f) => [f, await Deno.readTextFile(`${dir}/${f}`)])),
  );
}

async function assertIssuedBy(certPem: string, caPem: string): Promise<void> {
  const ok = await new X509Certificate(certPem).verify({
    publicKey: new X509Certificate(caPem).publicKey,
    date: new Date(),
  }, crypto);
  assert.ok(ok, "chains to the CA and is valid now");
}

async function withDataDir(fn: (dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "anya_pki_dev_" });
  try {
    await fn(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("pki_dev.ts writes a working dev PKI (keys 0600), keeps it on a rerun, replaces it with --force", async () => {
  await withDataDir(async (dataDir) => {
    const dir = `${dataDir}/pki`;
    const first = await runPkiDev(dataDir);
    assert.equal(first.code, 0, first.stderr);

    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    for (const f of FILES) {
      const mode = (await Deno.stat(`${dir}/${f}`)).mode! & 0o777;
      assert.equal(mode, f.endsWith(".key") ? 0o600 : 0o644, f);
    }
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(),
      [
        ...FILES,
      ].sort(),
      "no temp files left",
    );
    const pems = await readAll(dir);
    for (const f of FILES.filter((f) => f.endsWith(".key"))) {
      assert.match(pems[f]!, /^-----BEGIN PRIVATE KEY-----\n/, f);
    }
    const server = certificateInfo(pems["hsm-server.crt"]!);
    assert.deepEqual(server.dnsNames, ["localhost"]);
    assert.deepEqual(server.ipAddresses, ["127.0.0.1", "::1"]);
    const client = certificateInfo(pems["edge-client.crt"]!);
    assert.equal(client.subjectCommonName, "edge");
    await assertIssuedBy(pems["hsm-server.crt"]!, pems["ca.crt"]!);
    await assertIssuedBy(pems["edge-client.crt"]!, pems["ca.crt"]!);

    for (
      const line of [
        `HSM_TLS_CERT_FILE=${dir}/hsm-server.crt`,
        `HSM_TLS_KEY_FILE=${dir}/hsm-server.key`,
        `HSM_CLIENT_CA_FILE=${dir}/ca.crt`,
        "HSM_CLIENT_ALLOWLIST=edge=default",
        "HSM_URL=https://127.0.0.1:8443",
        `HSM_CA_FILE=${dir}/ca.crt`,
        `HSM_CLIENT_CERT_FILE=${dir}/edge-client.crt`,
        `HSM_CLIENT_KEY_FILE=${dir}/edge-client.key`,
      ]
    ) {
      assert.ok(first.stdout.includes(`  ${line}\n`), `${line} in:\n${first.stdout}`);
    }
    assert.match(first.stdout, /^created /m);

    // The printed variables point each side at files that work together.
    const env = pkiDevEnv(dir);
    const read = (path: string | undefined) => Deno.readTextFile(path ?? "");
    {
      await using server = await startMtlsServer({
        certPem: await read(env.hsm.HSM_TLS_CERT_FILE),
        keyPem: await read(env.hsm.HSM_TLS_KEY_FILE),
      }, await read(env.hsm.HSM_CLIENT_CA_FILE));
      const res = await fetchWith(server.url, {
        caCerts: [await read(env.edge.HSM_CA_FILE)],
        cert: await read(env.edge.HSM_CLIENT_CERT_FILE),
        key: await read(env.edge.HSM_CLIENT_KEY_FILE),
      });
      assert.equal(res.status, 200);
      assert.equal(server.peers[0]?.cn, "edge");
    }

    const second = await runPkiDev(dataDir);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(await readAll(dir), pems, "second run keeps every file");
    assert.doesNotMatch(second.stdout, /^created /m);
    assert.match(second.stdout, /--force replaces them/);

    const forced = await runPkiDev(dataDir, ["--force"]);
    assert.equal(forced.code, 0, forced.stderr);
    const replaced = await readAll(dir);
    for (const f of FILES) assert.notEqual(replaced[f], pems[f], `${f} replaced`);
    for (const f of FILES.filter((f) => f.endsWith(".key"))) {
      assert.equal((await Deno.stat(`${dir}/${f}`)).mode! & 0o777, 0o600, f);
    }
    await assertIssuedBy(replaced["edge-client.crt"]!, replaced["ca.crt"]!);
  });
});

Deno.test("writeDevPki() completes a partial PKI from the kept CA, and refuses leaves without a CA", async () => {
  await withDataDir(async (dataDir) => {
    const dir = pkiDir(dataDir);
    assert.deepEqual((await writeDevPki(dir, false)).outcomes, {
      ca: "created",
      server: "created",
      client: "created",
    });
    const before = await readAll(dir);

    await Deno.remove(`${dir}/edge-client.crt`);
    await Deno.remove(`${dir}/edge-client.key`);
    await Deno.chmod(`${dir}/hsm-server.key`, 0o644);
    const completed = await writeDevPki(dir, false);
    assert.deepEqual(completed.outcomes, { ca: "kept", server: "kept", client: "created" });
    const after = await readAll(dir);
    assert.equal(after["ca.crt"], before["ca.crt"]);
    assert.equal(after["hsm-server.crt"], before["hsm-server.crt"]);
    assert.notEqual(after["edge-client.crt"], before["edge-client.crt"]);
    await assertIssuedBy(after["edge-client.crt"]!, after["ca.crt"]!);
    assert.equal((await Deno.stat(`${dir}/hsm-server.key`)).mode! & 0o777, 0o600, "tightened");
    assert.deepEqual(completed.notes, [`Tightened "${dir}/hsm-server.key" to mode 0600`]);

    await Deno.remove(`${dir}/ca.key`);
    await assert.rejects(
      writeDevPki(dir, false),
      /ca\.crt" exists but ".*ca\.key" does not: rerun with --force/,
    );
    await Deno.remove(`${dir}/ca.crt`);
    await assert.rejects(
      writeDevPki(dir, false),
      /Leaf certificates exist .* but the CA does not: rerun with --force/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/edge-client.crt`), after["edge-client.crt"]);

    const forced = await writeDevPki(dir, true);
    assert.deepEqual(Object.values(forced.outcomes), ["created", "created", "created"]);
    await assertIssuedBy((await readAll(dir))["hsm-server.crt"]!, (await readAll(dir))["ca.crt"]!);
  });
});

Deno.test("pki_dev.ts through the launcher (the pki:dev task) honours ANYA_DATA_DIR", async () => {
  await withDataDir(async (dataDir) => {
    const out = await runDeno([
      "run",
      "--frozen",
      "--allow-env",
      "--allow-run=deno",
      "scripts/start.ts",
      "run",
      "scripts/pki_dev.ts",
      "--force",
    ], { ANYA_DATA_DIR: dataDir });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^created /m);
    const pems = await readAll(`${dataDir}/pki`);
    await assertIssuedBy(pems["edge-client.crt"]!, pems["ca.crt"]!);
  });
});

Deno.test("parsePkiDevArgs() and pkiDir()", () => {
  assert.deepEqual(parsePkiDevArgs([]), { force: false });
  assert.deepEqual(parsePkiDevArgs(["--force"]), { force: true });
  assert.equal(parsePkiDevArgs(["-h"]), "help");
  assert.throws(() => parsePkiDevArgs(["--froce"]), UsageError);
  assert.throws(() => parsePkiDevArgs(["extra"]), UsageError);
  assert.equal(pkiDir(undefined), "data/pki");
  assert.equal(pkiDir(""), "data/pki");
  assert.equal(pkiDir("/srv/anya/"), "/srv/anya/pki");
  assert.equal(pkiDir("/"), "/pki");
});
