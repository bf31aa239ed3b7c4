/**
 * The JSON shape of a key's signing policy (see `policy.ts` for what each
 * limit means and how it is enforced). Strict: unknown fields are refused,
 * so a misspelt limit is an error, never a limit silently not applied.
 *
 * @module
 */
import { z } from "zod";
import { type FieldIssue, ValidationError } from "../../errors/app_error.ts";
import { MAX_MONEY_SATS } from "../../bitcoin/amount.ts";
import { BITCOIN_NETWORKS, type BitcoinNetwork } from "../../bitcoin/network.ts";

/** Most addresses in a destination allowlist. */
export const MAX_POLICY_ADDRESSES = 1000;
/** Most descriptors in a destination allowlist. */
export const MAX_POLICY_DESCRIPTORS = 20;
/**
 * Most scripts the destination descriptors may expand to, together. Each is a
 * BIP32 derivation (milliseconds in JavaScript) when the policy is compiled;
 * the bound keeps a policy change to seconds.
 */
export const MAX_POLICY_DERIVED_SCRIPTS = 2000;
/** Range expanded for a ranged descriptor without one: indexes 0..999 (both ends inclusive). */
export const DEFAULT_DESCRIPTOR_RANGE: readonly [number, number] = Object.freeze([0, 999]);
/** BIP143/legacy SIGHASH_ALL. */
export const SIGHASH_ALL = 0x01;
/** BIP341 SIGHASH_DEFAULT (taproot only; commits to the same as ALL). */
export const SIGHASH_DEFAULT = 0x00;
/** Sighash types a policy may allow: DEFAULT, ALL, NONE, SINGLE, and the last three with ANYONECANPAY. */
export const KNOWN_SIGHASH_TYPES: readonly number[] = Object.freeze([
  0x00,
  0x01,
  0x02,
  0x03,
  0x81,
  0x82,
  0x83,
]);
/** Highest `maxFeeRateSatPerVb` accepted (far above any fee market; keeps the arithmetic exact). */
export const MAX_POLICY_FEE_RATE_SAT_PER_VB = 1_000_000;
// The largest unhardened BIP32 index; descriptors derive nothing above it.
const MAX_UNHARDENED_INDEX = 0x7fffffff;
const MAX_RANGE_SIZE = 1000;

// Digits only, no sign, no leading zeros: the same text always means the same amount. A bigint
// is accepted too, so a policy that was already parsed passes the schema again unchanged.
const satsString = z.union([
  z.string()
    .regex(/^(0|[1-9]\d{0,15})$/, "Expected whole satoshis as a decimal string")
    .transform((s) => BigInt(s)),
  z.bigint().min(0n, "Must not be negative"),
]).refine((v) => v <= MAX_MONEY_SATS, "Must not exceed 21,000,000 BTC");

const rangeSchema = z
  .tuple([
    z.number().int().min(0).max(MAX_UNHARDENED_INDEX),
    z.number().int().min(0).max(MAX_UNHARDENED_INDEX),
  ])
  .refine(([start, end]) => end >= start, "Range end is before its start")
  .refine(
    ([start, end]) => end - start + 1 <= MAX_RANGE_SIZE,
    `Range covers more than ${MAX_RANGE_SIZE} indexes`,
  );

/** Scripts a descriptor list expands to: a range's size for ranged ones (a `*` step), else 1. */
function derivedScripts(
  list: readonly { descriptor: string; range?: [number, number] | undefined }[],
): number {
  let total = 0;
  for (const { descriptor, range } of list) {
    if (!descriptor.includes("*")) {
      total += 1;
      continue;
    }
    const [start, end] = range ?? DEFAULT_DESCRIPTOR_RANGE;
    total += end - start + 1;
  }
  return total;
}

/**
 * A key's signing policy as stored and submitted (JSON). Amounts are decimal
 * strings of satoshis and come out as `bigint`; absent limits do not apply,
 * except `destinations`, which when present (even empty) is an allowlist:
 *
 * - `networks`: where the key may sign (at least one);
 * - `maxAmountPerTxSats` / `maxAmountPer24hSats`: limits on what leaves the
 *   key (outputs not verified as its own), per request and over a rolling 24 h;
 * - `destinations`: addresses and BIP380 descriptors (ranged ones expanded over
 *   `range`, default 0..999) every output that is not own must pay;
 * - `maxFeeRateSatPerVb`, `maxFeeSats`: fee limits (an unknown fee is refused);
 * - `sighashTypes`: allowed hash types, default SIGHASH_ALL and SIGHASH_DEFAULT;
 * - `changeToOwnDerivations` (default true): refuse an output that names the
 *   key in a derivation without being derived from it.
 */
export const SigningPolicySchema: z.ZodType<SigningPolicy, SigningPolicyJson> = z.strictObject({
  networks: z.array(z.enum(BITCOIN_NETWORKS)).min(1).max(BITCOIN_NETWORKS.length)
    .refine((n) => new Set(n).size === n.length, "Networks must not repeat"),
  maxAmountPerTxSats: satsString.optional(),
  maxAmountPer24hSats: satsString.optional(),
  destinations: z.strictObject({
    addresses: z.array(z.string().min(1).max(100)).max(MAX_POLICY_ADDRESSES).optional(),
    descriptors: z.array(z.strictObject({
      descriptor: z.string().min(1).max(8192),
      range: rangeSchema.optional(),
    })).max(MAX_POLICY_DESCRIPTORS).refine(
      (list) => derivedScripts(list) <= MAX_POLICY_DERIVED_SCRIPTS,
      `Ranged descriptors expand to more than ${MAX_POLICY_DERIVED_SCRIPTS} scripts in all`,
    ).optional(),
  }).optional(),
  maxFeeRateSatPerVb: z.number().min(0).max(MAX_POLICY_FEE_RATE_SAT_PER_VB).optional(),
  maxFeeSats: satsString.optional(),
  sighashTypes: z.array(
    z.number().int().refine((t) => KNOWN_SIGHASH_TYPES.includes(t), "Unknown sighash type"),
  ).min(1).max(KNOWN_SIGHASH_TYPES.length).default([SIGHASH_ALL, SIGHASH_DEFAULT]),
  changeToOwnDerivations: z.boolean().default(true),
});

/** A checked policy (amounts as bigint, defaults filled in); see {@linkcode SigningPolicySchema}. */
export interface SigningPolicy {
  /** Networks the key may sign on. */
  networks: BitcoinNetwork[];
  /** Most that may leave the key in one request. */
  maxAmountPerTxSats?: bigint | undefined;
  /** Most that may leave the key over a rolling 24 hours. */
  maxAmountPer24hSats?: bigint | undefined;
  /** Allowlist every output that is not own must pay; absent: any destination. */
  destinations?: PolicyDestinations | undefined;
  /** Highest fee rate, sat/vB (fractions allowed). */
  maxFeeRateSatPerVb?: number | undefined;
  /** Highest absolute fee. */
  maxFeeSats?: bigint | undefined;
  /** Allowed sighash types. */
  sighashTypes: number[];
  /** Refuse outputs that name the key in a derivation without being derived from it. */
  changeToOwnDerivations: boolean;
}

/** A destination allowlist. */
export interface PolicyDestinations {
  /** Addresses on the key's network. */
  addresses?: string[] | undefined;
  /** BIP380 public descriptors; `range` (inclusive) for ranged ones, default 0..999. */
  descriptors?: { descriptor: string; range?: [number, number] | undefined }[] | undefined;
}

/** The JSON form of a policy, as {@linkcode SigningPolicySchema} accepts it. */
export interface SigningPolicyJson {
  /** Networks the key may sign on. */
  networks: BitcoinNetwork[];
  /** Decimal string of satoshis (a bigint is accepted too). */
  maxAmountPerTxSats?: string | bigint | undefined;
  /** Decimal string of satoshis (a bigint is accepted too). */
  maxAmountPer24hSats?: string | bigint | undefined;
  /** Destination allowlist. */
  destinations?: PolicyDestinations | undefined;
  /** Highest fee rate, sat/vB. */
  maxFeeRateSatPerVb?: number | undefined;
  /** Decimal string of satoshis (a bigint is accepted too). */
  maxFeeSats?: string | bigint | undefined;
  /** Default [1, 0] (SIGHASH_ALL, SIGHASH_DEFAULT). */
  sighashTypes?: number[] | undefined;
  /** Default true. */
  changeToOwnDerivations?: boolean | undefined;
}

/**
 * Check a policy from JSON.
 *
 * @param input the parsed JSON body or stored document
 * @returns the policy with amounts as bigint and defaults filled in
 * @throws ValidationError (422) listing every invalid field under `policy.`
 */
export function parseSigningPolicy(input: unknown): SigningPolicy {
  const result = SigningPolicySchema.safeParse(input);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((i) => ({
    path: ["policy", ...i.path.map(String)].join("."),
    message: i.message,
  }));
  throw new ValidationError(`Invalid signing policy: ${issues[0]!.path}: ${issues[0]!.message}`, {
    status: 422,
    issues,
  });
}

/**
 * The JSON form of a policy, for storage (`bigint` amounts become strings).
 * `parseSigningPolicy(policyToJson(p))` gives back an equal policy.
 *
 * @param policy a checked policy
 */
export function policyToJson(policy: SigningPolicy): SigningPolicyJson {
  const json: SigningPolicyJson = {
    networks: [...policy.networks],
    sighashTypes: [...policy.sighashTypes],
    changeToOwnDerivations: policy.changeToOwnDerivations,
  };
  if (policy.maxAmountPerTxSats !== undefined) {
    json.maxAmountPerTxSats = policy.maxAmountPerTxSats.toString();
  }
  if (policy.maxAmountPer24hSats !== undefined) {
    json.maxAmountPer24hSats = policy.maxAmountPer24hSats.toString();
  }
  if (policy.maxFeeSats !== undefined) json.maxFeeSats = policy.maxFeeSats.toString();
  if (policy.maxFeeRateSatPerVb !== undefined) json.maxFeeRateSatPerVb = policy.maxFeeRateSatPerVb;
  if (policy.destinations !== undefined) {
    const d: NonNullable<SigningPolicyJson["destinations"]> = {};
    if (policy.destinations.addresses !== undefined) {
      d.addresses = [...policy.destinations.addresses];
    }
    if (policy.destinations.descriptors !== undefined) {
      d.descriptors = policy.destinations.descriptors.map((x) =>
        x.range === undefined
          ? { descriptor: x.descriptor }
          : { descriptor: x.descriptor, range: [x.range[0], x.range[1]] }
      );
    }
    json.destinations = d;
  }
  return json;
}
