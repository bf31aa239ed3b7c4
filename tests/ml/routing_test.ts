/** Version routing: sticky per caller, shares within statistical bounds of the weights. */
import assert from "node:assert/strict";
import { defaultRouting, pickVersion, stickyPoint } from "../../src/ml/routing.ts";

Deno.test("pickVersion() honours 70/20/10 weights over 20,000 callers within 5 standard deviations", () => {
  const table = {
    model: "fee-rate",
    routes: [{ version: "1.0.0", weight: 70 }, { version: "1.1.0", weight: 20 }, {
      version: "2.0.0",
      weight: 10,
    }],
    shadowVersion: null,
  };
  const n = 20_000;
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const v = pickVersion(table, `key-${i}`);
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  for (const r of table.routes) {
    const p = r.weight / 100;
    const sd = Math.sqrt(n * p * (1 - p));
    const got = counts.get(r.version) ?? 0;
    assert.ok(
      Math.abs(got - n * p) < 5 * sd,
      `${r.version}: ${got} of ${n}, expected ${n * p} ± ${5 * sd}`,
    );
  }
});

Deno.test("pickVersion() is sticky per caller and a zero weight gets nobody", () => {
  const table = {
    model: "m",
    routes: [{ version: "1.0.0", weight: 0 }, { version: "2.0.0", weight: 5 }],
    shadowVersion: null,
  };
  for (let i = 0; i < 500; i++) {
    assert.equal(pickVersion(table, `k${i}`), "2.0.0");
  }
  const ab = {
    ...table,
    routes: [{ version: "1.0.0", weight: 1 }, { version: "2.0.0", weight: 1 }],
  };
  for (let i = 0; i < 50; i++) assert.equal(pickVersion(ab, "same"), pickVersion(ab, "same"));
  assert.ok(stickyPoint("m", "a") >= 0 && stickyPoint("m", "a") < 1);
  assert.notEqual(
    stickyPoint("m", "a"),
    stickyPoint("n", "a"),
    "models split callers independently",
  );
});

Deno.test("defaultRouting() sends everything to the newest version; empty tables are refused", () => {
  assert.deepEqual(defaultRouting("m", ["1.0.0", "1.1.0"]).routes, [{
    version: "1.1.0",
    weight: 1,
  }]);
  assert.throws(() => defaultRouting("m", []), RangeError);
  assert.throws(
    () => pickVersion({ model: "m", routes: [], shadowVersion: null }, "k"),
    RangeError,
  );
});
