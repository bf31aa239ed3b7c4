import assert from "node:assert/strict";
import {
  DATA_KEY_BYTES,
  DataKeyFileError,
  formatDataKeyLine,
  generateDataKey,
  Keyring,
  newestDataKey,
  parseDataKeyFile,
  serializeDataKeyFile,
} from "../../src/crypto/mod.ts";

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

const KEY_A = new Uint8Array(DATA_KEY_BYTES).fill(0xa1);
const KEY_B = new Uint8Array(DATA_KEY_BYTES).fill(0xb2);

Deno.test("parseDataKeyFile() reads keys in order, skipping comments and blank lines", () => {
  const text = `# header\n\nka ${b64(KEY_A)}\r\n   # indented comment\n\tkb\t${b64(KEY_B)}  \n`;
  const entries = parseDataKeyFile(text);
  assert.deepEqual(entries.map((e) => e.id), ["ka", "kb"]);
  assert.deepEqual(entries[0]?.key, KEY_A);
  assert.deepEqual(entries[1]?.key, KEY_B);
  assert.equal(newestDataKey(entries).id, "kb");
});

Deno.test("serializeDataKeyFile() output parses back to the same keys", () => {
  const entries = [{ id: "k1", key: KEY_A }, { id: "k2", key: KEY_B }];
  const text = serializeDataKeyFile(entries, { comment: "line one\nline two" });
  assert.ok(text.startsWith("# line one\n# line two\n"));
  assert.ok(text.endsWith("\n"));
  assert.deepEqual(parseDataKeyFile(text), entries);
  assert.equal(formatDataKeyLine(entries[0]!), `k1 ${b64(KEY_A)}`);
});

Deno.test("parseDataKeyFile() names the bad line and never echoes key material", () => {
  const good = `k1 ${b64(KEY_A)}`;
  const short = b64(new Uint8Array(16).fill(7));
  const long = b64(new Uint8Array(33).fill(7));
  const cases: { label: string; text: string; line: number; match: RegExp; secret?: string }[] = [
    { label: "wrong length (16)", text: `${good}\nk2 ${short}`, line: 2, match: /32 bytes/ },
    { label: "wrong length (33)", text: `${good}\nk2 ${long}`, line: 2, match: /32 bytes/ },
    {
      label: "bad base64 symbol",
      text: `# c\n${good}\nk2 ${b64(KEY_B).replace("s", "!")}`,
      line: 3,
      match: /base64/,
      secret: b64(KEY_B).slice(0, 20),
    },
    {
      label: "non-canonical base64",
      text: `k2 ${b64(KEY_B).slice(0, 42)}z=`,
      line: 1,
      match: /base64/,
    },
    {
      label: "missing padding",
      text: `k2 ${b64(KEY_B).slice(0, 43)}`,
      line: 1,
      match: /base64/,
    },
    {
      label: "duplicate id",
      text: `${good}\n\nk1 ${b64(KEY_B)}`,
      line: 3,
      match: /duplicate key id "k1" \(first on line 1\)/,
      secret: b64(KEY_B),
    },
    {
      label: "upper-case id",
      text: `K1 ${b64(KEY_A)}`,
      line: 1,
      match: /key id must match/,
    },
    {
      label: "id too long",
      text: `${"k".repeat(33)} ${b64(KEY_A)}`,
      line: 1,
      match: /key id must match/,
    },
    {
      label: "swapped fields",
      text: `${b64(KEY_A)} k1`,
      line: 1,
      match: /key id must match/,
      secret: b64(KEY_A),
    },
    { label: "key alone", text: b64(KEY_A), line: 1, match: /expected/, secret: b64(KEY_A) },
    {
      label: "three fields",
      text: `k1 ${b64(KEY_A)} extra`,
      line: 1,
      match: /expected/,
      secret: b64(KEY_A),
    },
  ];
  for (const c of cases) {
    assert.throws(
      () => parseDataKeyFile(c.text),
      (err: unknown) => {
        assert.ok(err instanceof DataKeyFileError, c.label);
        assert.equal(err.line, c.line, c.label);
        assert.match(err.message, new RegExp(`line ${c.line}:`), c.label);
        assert.match(err.message, c.match, c.label);
        assert.ok(!err.message.includes(c.secret ?? b64(KEY_A).slice(0, 12)), c.label);
        assert.ok(!err.message.includes(b64(KEY_B).slice(0, 12)), c.label);
        return true;
      },
      c.label,
    );
  }
});

Deno.test("parseDataKeyFile() rejects a file without keys", () => {
  for (const text of ["", "# only a comment\n", "\n\n"]) {
    assert.throws(() => parseDataKeyFile(text), /holds no key/);
  }
});

Deno.test("keyring functions reject wrong types and sizes", () => {
  const cases: [string, () => unknown, typeof TypeError | typeof RangeError][] = [
    ["parse number", () => parseDataKeyFile(42 as unknown as string), TypeError],
    ["parse bytes", () => parseDataKeyFile(KEY_A as unknown as string), TypeError],
    ["serialize non-array", () => serializeDataKeyFile("x" as never), TypeError],
    ["serialize empty", () => serializeDataKeyFile([]), RangeError],
    [
      "serialize short key",
      () => serializeDataKeyFile([{ id: "k", key: KEY_A.subarray(1) }]),
      RangeError,
    ],
    ["serialize bad id", () => serializeDataKeyFile([{ id: "K!", key: KEY_A }]), RangeError],
    ["serialize id type", () => serializeDataKeyFile([{ id: 1 as never, key: KEY_A }]), TypeError],
    ["serialize key type", () => serializeDataKeyFile([{ id: "k", key: [1] as never }]), TypeError],
    [
      "serialize duplicate",
      () => serializeDataKeyFile([{ id: "k", key: KEY_A }, { id: "k", key: KEY_B }]),
      RangeError,
    ],
    ["format null", () => formatDataKeyLine(null as never), TypeError],
    ["newest empty", () => newestDataKey([]), RangeError],
    ["generate bad date", () => generateDataKey({ now: new Date(NaN) }), TypeError],
  ];
  for (const [label, fn, type] of cases) assert.throws(fn, type, label);
});

Deno.test("Keyring.import() rejects wrong types, sizes and duplicates", async () => {
  await assert.rejects(() => Keyring.import("x" as never), TypeError);
  await assert.rejects(() => Keyring.import([]), RangeError);
  await assert.rejects(() => Keyring.import([{ id: "k", key: new Uint8Array(16) }]), RangeError);
  await assert.rejects(
    () => Keyring.import([{ id: "k", key: KEY_A }, { id: "k", key: KEY_B }]),
    RangeError,
  );
});

Deno.test("Keyring holds non-extractable AES-GCM keys and names the last one newest", async () => {
  const keyring = await Keyring.import([{ id: "ka", key: KEY_A }, { id: "kb", key: KEY_B }]);
  assert.equal(keyring.newestKeyId, "kb");
  assert.deepEqual(keyring.keyIds, ["ka", "kb"]);
  const key = keyring.getKey("ka");
  assert.ok(key);
  assert.equal(key.extractable, false);
  assert.equal(key.algorithm.name, "AES-GCM");
  await assert.rejects(() => crypto.subtle.exportKey("raw", key));
  assert.equal(keyring.getKey("missing"), undefined);
  assert.throws(() => new Keyring(Symbol("x"), new Map()), TypeError);
});

Deno.test("generateDataKey() makes dated, unique ids and 32 random bytes", () => {
  const now = new Date("2026-11-28T12:00:00Z");
  const a = generateDataKey({ now });
  const b = generateDataKey({ now, existingIds: [a.id] });
  assert.match(a.id, /^k2026-11-28-[0-9a-f]{8}$/);
  assert.notEqual(a.id, b.id);
  assert.equal(a.key.length, DATA_KEY_BYTES);
  assert.notDeepEqual(a.key, b.key);
  assert.deepEqual(parseDataKeyFile(serializeDataKeyFile([a, b])), [a, b]);
});
