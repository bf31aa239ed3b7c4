/**
 * The Core Lightning schema files the clnrest peer validates with
 * (`tests/vectors/cln/`): each matches CLN's meta-schema, and every example
 * in them (a real request/response pair from CLN's test suite) passes the
 * peer's request and response validators. An example that fails is listed
 * in `KNOWN_EXAMPLE_FAILURES` with a reason, never skipped silently: the
 * test fails when the set of failing examples differs from that list.
 * Negative controls show the validators are not vacuous.
 */
import assert from "node:assert/strict";
import {
  checkClnExamples,
  checkClnSchemaDoc,
  CLN_COMMANDS,
  CLN_SCHEMAS,
  type ClnCommand,
  validateClnRequest,
  validateClnResponse,
  validateClnSchemaDoc,
} from "../../_peers/cln_peer.ts";

/** Examples known not to match their own schema: id → why. None at snapshot 090f4b0e. */
const KNOWN_EXAMPLE_FAILURES: Readonly<Record<string, string>> = {};

for (const command of CLN_COMMANDS) {
  Deno.test(`${command}.json conforms to CLN's rpc-schema-draft meta-schema`, () => {
    assert.deepEqual(checkClnSchemaDoc(command), []);
  });

  Deno.test(`${command}.json examples validate against its request and response schemas`, () => {
    const checks = checkClnExamples(command);
    assert.ok(checks.length > 0, `${command}.json has no examples`);
    const failing: Record<string, string[]> = {};
    for (const c of checks) {
      const errors = [
        ...c.requestErrors.map((e) => `request ${e}`),
        ...c.responseErrors.map((e) => `response ${e}`),
      ];
      if (errors.length > 0) failing[c.id] = errors;
    }
    const known = Object.keys(KNOWN_EXAMPLE_FAILURES).filter((id) =>
      checks.some((c) => c.id === id)
    );
    assert.deepEqual(
      Object.keys(failing).sort(),
      known.sort(),
      `examples failing their own schema: ${JSON.stringify(failing, null, 2)}`,
    );
  });
}

/** The response of a command's example `n`, copied so a test can change it. */
function exampleResponse(command: ClnCommand, n = 0): Record<string, unknown> {
  const ex = CLN_SCHEMAS[command].examples?.[n];
  assert.ok(ex !== undefined, `${command} example ${n}`);
  return structuredClone(ex.response) as Record<string, unknown>;
}

Deno.test("validators reject wrong CLN types, unknown fields and missing required fields", () => {
  const info = exampleResponse("getinfo");
  assert.deepEqual(validateClnResponse("getinfo", info), []);
  assert.notDeepEqual(validateClnResponse("getinfo", { ...info, id: "04" + "ab".repeat(32) }), []);
  assert.notDeepEqual(validateClnResponse("getinfo", { ...info, bogus: 1 }), []);
  const { alias: _, ...noAlias } = info;
  assert.notDeepEqual(validateClnResponse("getinfo", noAlias), []);
  // `type` is a property name inside `binding`, not the schema keyword: its enum still applies.
  const binding = [{ type: "carrier-pigeon", address: "127.0.0.1", port: 1 }];
  assert.notDeepEqual(validateClnResponse("getinfo", { ...info, binding }), []);
  // u16: a port above 65535.
  const bigPort = [{ type: "ipv4", address: "127.0.0.1", port: 70_000 }];
  assert.notDeepEqual(validateClnResponse("getinfo", { ...info, binding: bigPort }), []);
});

Deno.test("msat: requests take suffixed strings, responses only integers", () => {
  const params = { amount_msat: "50000msat", label: "l", description: "d" };
  assert.deepEqual(validateClnRequest("invoice", params), []);
  assert.deepEqual(validateClnRequest("invoice", { ...params, amount_msat: "any" }), []);
  assert.deepEqual(validateClnRequest("invoice", { ...params, amount_msat: 5 }), []);
  assert.notDeepEqual(validateClnRequest("invoice", { ...params, amount_msat: "5" }), []);
  assert.notDeepEqual(validateClnRequest("invoice", { ...params, amount_msat: -5 }), []);
  assert.notDeepEqual(validateClnRequest("invoice", { ...params, colour: "red" }), []);
  const paid = exampleResponse("waitanyinvoice");
  assert.deepEqual(validateClnResponse("waitanyinvoice", paid), []);
  assert.notDeepEqual(
    validateClnResponse("waitanyinvoice", { ...paid, amount_received_msat: "500000000msat" }),
    [],
  );
});

Deno.test("if/then branches apply: a paid invoice needs its payment fields", () => {
  const paid = exampleResponse("waitanyinvoice");
  const { payment_preimage: _, ...noPreimage } = paid;
  assert.notDeepEqual(validateClnResponse("waitanyinvoice", noPreimage), []);
  // An unpaid invoice must not carry them.
  const unpaid = { ...paid, status: "unpaid" };
  assert.notDeepEqual(validateClnResponse("listinvoices", { invoices: [unpaid] }), []);
  const { pay_index: _p, amount_received_msat: _a, paid_at: _t, payment_preimage: _r, ...rest } =
    paid;
  assert.deepEqual(
    validateClnResponse("listinvoices", { invoices: [{ ...rest, status: "unpaid" }] }),
    [],
  );
});

Deno.test("positional example params are named in the schema's property order", () => {
  const [positional] = checkClnExamples("xpay");
  assert.equal(positional?.positional, true);
  assert.deepEqual(positional?.requestErrors, []);
  // The first xpay parameter is invstring: a number there must fail.
  assert.notDeepEqual(validateClnRequest("xpay", { invstring: 1 }), []);
  assert.deepEqual(
    Object.keys(CLN_SCHEMAS.xpay.request.properties as object).slice(0, 2),
    ["invstring", "amount_msat"],
  );
});

Deno.test("the meta-schema check rejects an unknown type and an unknown top-level key", () => {
  const doc = structuredClone(CLN_SCHEMAS.getinfo) as unknown as {
    response: { properties: Record<string, unknown> };
  };
  assert.deepEqual(validateClnSchemaDoc(doc), []);
  doc.response.properties.id = { type: "pubkeyy", description: ["typo"] };
  assert.notDeepEqual(validateClnSchemaDoc(doc), []);
  assert.notDeepEqual(validateClnSchemaDoc({ ...CLN_SCHEMAS.getinfo, colour: "red" }), []);
});
