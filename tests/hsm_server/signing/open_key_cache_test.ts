/** `OpenKeyCache`: reuse, idle expiry, eviction, leases and the size bound. */
import assert from "node:assert/strict";
import { generateKeyMaterial, openKey } from "../../../src/hsm_server/signing/key_material.ts";
import { OpenKeyCache } from "../../../src/hsm_server/signing/open_key_cache.ts";

const MATERIAL = generateKeyMaterial("bip32");
function opener() {
  let opened = 0;
  return {
    get opened() {
      return opened;
    },
    open: () => {
      opened++;
      return Promise.resolve(openKey("bip32", MATERIAL, "regtest"));
    },
  };
}

Deno.test("OpenKeyCache reuses an opened key until it is idle for idleMs", async () => {
  let now = 0;
  using cache = disposable(new OpenKeyCache({ idleMs: 1_000, maxKeys: 4, now: () => now }));
  const o = opener();
  const a = await cache.lease("k1", 1, o.open);
  a.release();
  const b = await cache.lease("k1", 1, o.open);
  assert.equal(b.key, a.key);
  b.release();
  assert.equal(o.opened, 1);
  now += 1_001;
  cache.sweep();
  assert.equal(cache.size, 0);
  assert.equal(a.key.disposed, true, "an idle key is zeroed");
  await cache.lease("k1", 1, o.open).then((l) => l.release());
  assert.equal(o.opened, 2);
});

Deno.test("OpenKeyCache.evict() disposes a leased key only when its lease ends", async () => {
  using cache = disposable(new OpenKeyCache({ idleMs: 60_000, maxKeys: 4 }));
  const o = opener();
  const v1 = await cache.lease("k1", 1, o.open);
  const v2 = await cache.lease("k1", 2, o.open);
  v2.release();
  cache.evict("k1", 2);
  assert.equal(v2.key.disposed, true);
  assert.equal(cache.size, 1);
  cache.evict("k1");
  assert.equal(cache.size, 0);
  assert.equal(v1.key.disposed, false, "still in use");
  assert.ok(v1.key.publicKeyAt([0, 1]).length === 33);
  v1.release();
  v1.release();
  assert.equal(v1.key.disposed, true);
});

Deno.test("OpenKeyCache keeps at most maxKeys, dropping the least recently used", async () => {
  using cache = disposable(new OpenKeyCache({ idleMs: 60_000, maxKeys: 2 }));
  const o = opener();
  const leases = [];
  for (const id of ["a", "b", "a", "c"]) {
    const l = await cache.lease(id, 1, o.open);
    l.release();
    leases.push(l);
  }
  assert.equal(cache.size, 2);
  assert.equal(leases[1]!.key.disposed, true, "b was the least recently used");
  assert.equal(leases[2]!.key.disposed, false);
  assert.equal(o.opened, 3);
});

Deno.test("OpenKeyCache with idleMs 0 keeps nothing", async () => {
  const cache = new OpenKeyCache({ idleMs: 0, maxKeys: 1 });
  const o = opener();
  const l = await cache.lease("k", 1, o.open);
  assert.equal(cache.size, 0);
  l.release();
  assert.equal(l.key.disposed, true);
  assert.throws(() => new OpenKeyCache({ idleMs: -1, maxKeys: 1 }), RangeError);
  assert.throws(() => new OpenKeyCache({ idleMs: 0, maxKeys: 0 }), RangeError);
});

function disposable(cache: OpenKeyCache): OpenKeyCache & Disposable {
  return Object.assign(cache, { [Symbol.dispose]: () => cache.clear() });
}
