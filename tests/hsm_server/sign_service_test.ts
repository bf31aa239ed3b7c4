/**
 * The HSM's key and signing services on a real database (PGlite, and
 * PostgreSQL when DATABASE_URL_TEST is set): idempotency, status, usage,
 * policy denials audited, "no audit, no signature", and concurrent requests
 * of one key group-committed.
 */
import assert from "node:assert/strict";
import { base64 } from "@scure/base";
import { Transaction } from "@scure/btc-signer";
import { DB_KINDS, openTestDb, type TestDb } from "../_helpers/db.ts";
import { keyPsbt } from "../_helpers/hsm_psbt.ts";
import { migrate } from "../../src/db/mod.ts";
import { HSM_MIGRATIONS } from "../../src/hsm_server/migrations/mod.ts";
import { AuditLog } from "../../src/audit/mod.ts";
import { KeysService } from "../../src/hsm_server/keys_service.ts";
import { SignService } from "../../src/hsm_server/sign_service.ts";
import { SoftwareKeyStore } from "../../src/hsm_server/signing/sealed_key_store.ts";
import { OpenKeyCache } from "../../src/hsm_server/signing/open_key_cache.ts";
import { verifyInputSignatures } from "../../src/bitcoin/signatures.ts";
import { PSBT_TX_OPTS } from "../../src/bitcoin/psbt_parse.ts";
import { ConflictError, PolicyViolationError, ValidationError } from "../../src/errors/mod.ts";

const CALLER = { tenant: "acme", owner: "shop", requestId: "req-1", subject: "edge" };
const POLICY = { networks: ["mainnet"], maxAmountPerTxSats: "100000", maxFeeSats: "5000" };

function hsmTest(name: string, fn: (t: Awaited<ReturnType<typeof setup>>) => Promise<void>) {
  for (const kind of DB_KINDS) {
    Deno.test({
      name: `${name} [${kind}]`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        await using db = await openTestDb(kind, { migrate: false });
        await migrate(db, HSM_MIGRATIONS);
        await fn(await setup(db));
      },
    });
  }
}

async function setup(db: TestDb) {
  const store = new SoftwareKeyStore(crypto.getRandomValues(new Uint8Array(32)));
  const audit = new AuditLog(db);
  // As hsm_main.ts wires them: one cache of opened keys shared by both services.
  const keyCache = new OpenKeyCache({ idleMs: 60_000, maxKeys: 16 });
  const keys = new KeysService({ db, audit, store, keyCache });
  const signer = new SignService({ db, audit, store, keyCache });
  const key = await keys.create(CALLER, {
    label: "hot",
    kind: "bip32",
    usage: "transactions",
    network: "mainnet",
  });
  await keys.setPolicy(CALLER, key.id, POLICY);
  const count = async (action: string, outcome = "success") =>
    Number(
      (await db.query<{ n: bigint }>(
        "SELECT count(*) AS n FROM audit_log WHERE action = $1 AND outcome = $2",
        [action, outcome],
      ))[0]!.n,
    );
  return { db, keys, signer, keyCache, key, xpub: key.versions[0]!.xpub!, count };
}

hsmTest("signs every input of the key (P2WPKH, P2SH-P2WPKH, P2PKH, P2TR) once", async (t) => {
  const p = keyPsbt(t.xpub, ["p2wpkh", "p2sh-p2wpkh", "p2pkh", "p2tr"], { coinSats: 30_000n });
  const req = { keyId: t.key.id, psbt: p.psbt, idempotencyKey: "k-000001" };
  const first = await t.signer.signPsbt(CALLER, req);
  assert.deepEqual(first.signatures.map((s) => [s.input, s.scheme]), [
    [0, "ecdsa"],
    [1, "ecdsa"],
    [2, "ecdsa"],
    [3, "schnorr"],
  ]);
  const tx = Transaction.fromPSBT(base64.decode(first.psbt), PSBT_TX_OPTS);
  for (let i = 0; i < 4; i++) {
    assert.equal(verifyInputSignatures(tx, i).status, "valid", `input ${i}`);
  }
  // The fee counts toward the amount: it leaves the key's control too.
  assert.equal(first.amountSats, String(p.paySats + p.feeSats));
  const again = await t.signer.signPsbt(CALLER, req);
  assert.deepEqual(again, first);
  assert.equal(await t.count("sign.psbt"), 1, "a repeat signs and audits nothing");
  await assert.rejects(
    () => t.signer.signPsbt(CALLER, { ...req, psbt: keyPsbt(t.xpub, ["p2wpkh"]).psbt }),
    (e: unknown) => e instanceof ConflictError && e.code === "idempotency-key-reused",
  );
});

hsmTest("policy denials name every failed rule, are audited, and sign nothing", async (t) => {
  const p = keyPsbt(t.xpub, ["p2wpkh", "p2wpkh"], { paySats: 150_000n, feeSats: 9_000n });
  await assert.rejects(
    () => t.signer.signPsbt(CALLER, { keyId: t.key.id, psbt: p.psbt, idempotencyKey: "k-deny-1" }),
    (e: unknown) => {
      assert.ok(e instanceof PolicyViolationError);
      const rules = (e.extensions.rules as { rule: string }[]).map((r) => r.rule);
      assert.deepEqual(rules.sort(), ["max-amount-per-tx", "max-fee"]);
      return true;
    },
  );
  assert.equal(await t.count("sign.psbt"), 0);
  assert.equal(await t.count("sign.psbt", "denied"), 1);
  const [v] = await t.db.query<{ n: bigint }>("SELECT count(*) AS n FROM hsm_velocity");
  assert.equal(v!.n, 0n);
});

hsmTest("a key without a policy signs nothing (fail closed)", async (t) => {
  const bare = await t.keys.create(CALLER, {
    label: "bare",
    kind: "bip32",
    usage: "transactions",
    network: "mainnet",
  });
  const p = keyPsbt(bare.versions[0]!.xpub!, ["p2wpkh"]);
  await assert.rejects(
    () => t.signer.signPsbt(CALLER, { keyId: bare.id, psbt: p.psbt, idempotencyKey: "k-nopol" }),
    /no-policy/,
  );
});

hsmTest("when the audit row cannot be written, nothing is signed or stored", async (t) => {
  await t.db.exec(`
    CREATE FUNCTION deny_audit() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$;
    CREATE TRIGGER audit_down BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION deny_audit();
  `);
  const p = keyPsbt(t.xpub, ["p2wpkh"]);
  await assert.rejects(() =>
    t.signer.signPsbt(CALLER, { keyId: t.key.id, psbt: p.psbt, idempotencyKey: "k-noaudit" })
  );
  const [r] = await t.db.query<{ n: bigint }>("SELECT count(*) AS n FROM hsm_requests");
  const [v] = await t.db.query<{ n: bigint }>("SELECT count(*) AS n FROM hsm_velocity");
  assert.equal(r!.n, 0n);
  assert.equal(v!.n, 0n);
});

hsmTest("disabled, destroyed and rotated keys", async (t) => {
  const p = keyPsbt(t.xpub, ["p2wpkh"]);
  await t.keys.setStatus(CALLER, t.key.id, { status: "signing-disabled" });
  await assert.rejects(
    () => t.signer.signPsbt(CALLER, { keyId: t.key.id, psbt: p.psbt, idempotencyKey: "k-dis-01" }),
    (e: unknown) => e instanceof ConflictError && e.code === "key-not-active",
  );
  await t.keys.setStatus(CALLER, t.key.id, { status: "active" });
  const rotated = await t.keys.rotate(CALLER, t.key.id);
  assert.equal(rotated.currentVersion, 2);
  assert.notEqual(rotated.versions[1]!.xpub, rotated.versions[0]!.xpub);
  // The old version still signs until it is disabled.
  await t.signer.signPsbt(CALLER, { keyId: t.key.id, psbt: p.psbt, idempotencyKey: "k-old-01" });
  await t.keys.setStatus(CALLER, t.key.id, { status: "signing-disabled", version: 1 });
  await assert.rejects(
    () => t.signer.signPsbt(CALLER, { keyId: t.key.id, psbt: p.psbt, idempotencyKey: "k-old-02" }),
    ValidationError,
  );
  await t.keys.setStatus(CALLER, t.key.id, { status: "destroyed" });
  const [row] = await t.db.query<{ n: bigint }>(
    "SELECT count(*) AS n FROM hsm_key_versions WHERE key_id = $1 AND sealed IS NOT NULL",
    [t.key.id],
  );
  assert.equal(row!.n, 0n, "destroying wipes every sealed version");
  await assert.rejects(
    () => t.keys.setStatus(CALLER, t.key.id, { status: "active" }),
    ConflictError,
  );
});

hsmTest("transaction keys never sign raw digests; oracle keys sign only digests", async (t) => {
  const digest = { digestHex: "11".repeat(32), path: [], idempotencyKey: "k-digest-1" };
  await assert.rejects(() => t.signer.signDigest(CALLER, { keyId: t.key.id, ...digest }), /oracle/);
  const oracle = await t.keys.create(CALLER, {
    label: "oracle",
    kind: "single",
    usage: "oracle",
    network: "mainnet",
  });
  const sig = await t.signer.signDigest(CALLER, { keyId: oracle.id, ...digest });
  assert.equal(sig.signatureHex.length, 128);
  assert.equal(sig.publicKeyHex, oracle.versions[0]!.publicKeyHex.slice(2));
});

hsmTest("keys are scoped to tenant and owner", async (t) => {
  await assert.rejects(() => t.keys.get({ ...CALLER, owner: "other" }, t.key.id), /not found/i);
  await assert.rejects(() => t.keys.get({ ...CALLER, tenant: "beta" }, t.key.id), /not found/i);
  assert.equal((await t.keys.list({ ...CALLER, owner: "other" })).length, 0);
});

hsmTest(
  "concurrent requests of one key: the batch's velocity adds up, a denial spares the rest",
  async (t) => {
    // 52 000 sat per request (pay + fee): two fit under 120 000 in 24 h, the third does not.
    await t.keys.setPolicy(CALLER, t.key.id, { ...POLICY, maxAmountPer24hSats: "120000" });
    const psbts = [1, 2, 3].map((salt) => keyPsbt(t.xpub, ["p2wpkh"], { salt }).psbt);
    const results = await Promise.allSettled(
      psbts.map((psbt, i) =>
        t.signer.signPsbt({ ...CALLER, requestId: `req-c${i}` }, {
          keyId: t.key.id,
          psbt,
          idempotencyKey: `k-conc-${i}`,
        })
      ),
    );
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled", "rejected"]);
    const denied = (results[2] as PromiseRejectedResult).reason;
    assert.ok(denied instanceof PolicyViolationError);
    assert.deepEqual(
      (denied.extensions.rules as { rule: string }[]).map((r) => r.rule),
      ["max-amount-per-24h"],
    );
    assert.equal(await t.count("sign.psbt"), 2);
    assert.equal(await t.count("sign.psbt", "denied"), 1);
    const velocity = await t.db.query<{ request_id: string }>(
      "SELECT request_id FROM hsm_velocity ORDER BY id",
    );
    assert.deepEqual(velocity.map((v) => v.request_id), ["req-c0", "req-c1"]);
    const verified = await new AuditLog(t.db).verify();
    assert.equal(verified.ok, true, JSON.stringify(verified));
  },
);

hsmTest(
  "one idempotency key twice at once signs once; with another request it is a 409",
  async (t) => {
    const p = keyPsbt(t.xpub, ["p2wpkh"], { salt: 7 });
    const other = keyPsbt(t.xpub, ["p2wpkh"], { salt: 8 });
    const req = { keyId: t.key.id, psbt: p.psbt, idempotencyKey: "k-twice" };
    const [a, b, c] = await Promise.allSettled([
      t.signer.signPsbt(CALLER, req),
      t.signer.signPsbt(CALLER, req),
      t.signer.signPsbt(CALLER, { ...req, psbt: other.psbt }),
    ]);
    assert.equal(a.status, "fulfilled");
    assert.deepEqual(b, a);
    assert.equal(c.status, "rejected");
    assert.ok(c.reason instanceof ConflictError);
    assert.equal(c.reason.code, "idempotency-key-reused");
    assert.equal(await t.count("sign.psbt"), 1);
    const [r] = await t.db.query<{ n: bigint }>("SELECT count(*) AS n FROM hsm_requests");
    assert.equal(r!.n, 1n);
  },
);

hsmTest(
  "an opened key is kept for the next request and dropped when its status changes",
  async (t) => {
    assert.equal(t.keyCache.size, 0);
    const p = keyPsbt(t.xpub, ["p2wpkh"]);
    await t.signer.signPsbt(CALLER, { keyId: t.key.id, psbt: p.psbt, idempotencyKey: "k-cache-1" });
    assert.equal(t.keyCache.size, 1);
    await t.keys.setStatus(CALLER, t.key.id, { status: "signing-disabled" });
    assert.equal(t.keyCache.size, 0);
    await assert.rejects(
      () =>
        t.signer.signPsbt(CALLER, { keyId: t.key.id, psbt: p.psbt, idempotencyKey: "k-cache-2" }),
      ConflictError,
    );
    assert.equal(t.keyCache.size, 0);
  },
);
