import assert from "node:assert/strict";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp } from "../_helpers/app.ts";

dbTest("GET /v1/addresses/{address} describes valid addresses of the network", async (db) => {
  await using t = buildTestApp(db);
  const key = await t.key("acme", ["read"]);
  const res = await t.call("/v1/addresses/bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", {
    key: key.secret,
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    valid: true,
    network: "mainnet",
    type: "p2wpkh",
    scriptPubKey: "0014e8df018c7e326cc253faac7e46cdc51e68542c42",
    witnessVersion: 0,
  });
});

dbTest("GET /v1/addresses/{address} flags other-network and garbage addresses", async (db) => {
  await using t = buildTestApp(db);
  const key = await t.key("acme", ["read"]);
  const testnet = await (await t.call("/v1/addresses/tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", {
    key: key.secret,
  }))
    .json();
  assert.equal(testnet.valid, false);
  assert.ok(testnet.validOn.includes("testnet4"));
  const junk = await (await t.call("/v1/addresses/notanaddress", { key: key.secret })).json();
  assert.equal(junk.valid, false);
  assert.match(junk.reason, /checksum|encoding/);
});
