/**
 * Per-key signing policy, enforced inside the HSM and fail closed: a key with
 * no policy signs nothing, a rule whose inputs are unknown (fee without UTXO
 * data, size of an unknown script) denies, and every failed rule is reported
 * at once so a client can fix its request in one go.
 *
 * Three steps, all pure:
 * 1. {@linkcode SigningPolicySchema} checks the stored/submitted JSON (strict:
 *    unknown fields are refused, so a typo never silently drops a limit).
 * 2. {@linkcode compilePolicy} expands the destination allowlist once per
 *    policy into a set of scriptPubKeys (addresses via `address.ts`, BIP380
 *    descriptors via `descriptor.ts`).
 * 3. `requestFacts` (`request_facts.ts`) reads a PSBT into facts and
 *    {@linkcode evaluatePolicy} checks them against the compiled policy and the
 *    key's rolling 24 h spend (`velocity_repo.ts`).
 *
 * "Change" is decided by the signer, not by the PSBT's say-so: an output is
 * own only when it carries a BIP32 (BIP174 PSBT_OUT_BIP32_DERIVATION) or
 * taproot (BIP371 PSBT_OUT_TAP_BIP32_DERIVATION) derivation of the signing key
 * whose derived public key really produces the output script. A derivation
 * that merely names the key's fingerprint proves nothing, since anyone can
 * write one; with `changeToOwnDerivations` such an output is refused, and
 * either way it counts as money leaving the key.
 *
 * @module
 */
import { hex } from "@scure/base";
import { type FieldIssue, ValidationError } from "../../errors/app_error.ts";
import { addressToScript, assertNetwork } from "../../bitcoin/address.ts";
import { formatSatPerVb, satPerVbToSatPerKvb } from "../../bitcoin/amount.ts";
import { expandDescriptor, parseDescriptor } from "../../bitcoin/descriptor.ts";
import type { BitcoinNetwork } from "../../bitcoin/network.ts";
import { sighashName } from "../../bitcoin/psbt_inspect.ts";
import type { RequestFacts } from "./request_facts.ts";
import {
  DEFAULT_DESCRIPTOR_RANGE,
  parseSigningPolicy,
  type SigningPolicy,
  type SigningPolicyJson,
} from "./policy_schema.ts";

export {
  DEFAULT_DESCRIPTOR_RANGE,
  KNOWN_SIGHASH_TYPES,
  MAX_POLICY_ADDRESSES,
  MAX_POLICY_DERIVED_SCRIPTS,
  MAX_POLICY_DESCRIPTORS,
  MAX_POLICY_FEE_RATE_SAT_PER_VB,
  parseSigningPolicy,
  type PolicyDestinations,
  policyToJson,
  SIGHASH_ALL,
  SIGHASH_DEFAULT,
  type SigningPolicy,
  type SigningPolicyJson,
  SigningPolicySchema,
} from "./policy_schema.ts";
export {
  type FactsContext,
  type InputFacts,
  type OutputFacts,
  type RequestFacts,
  requestFacts,
} from "./request_facts.ts";

/** Stable names of the rules {@linkcode evaluatePolicy} reports. */
export const POLICY_RULES = [
  "no-policy",
  "network",
  "max-amount-per-tx",
  "max-amount-per-24h",
  "destination",
  "max-fee-rate",
  "max-fee",
  "fee-unknown",
  "sighash",
  "change",
] as const;

/** One of {@linkcode POLICY_RULES}. */
export type PolicyRule = typeof POLICY_RULES[number];

/** A policy prepared for one network; built only by {@linkcode compilePolicy}. */
export interface CompiledPolicy {
  /** The policy it was compiled from. */
  readonly policy: SigningPolicy;
  /** The network the allowlist was expanded for. */
  readonly network: BitcoinNetwork;
  /**
   * Allowed output scripts, lowercase hex; null when the policy has no
   * allowlist, or when `network` is not one of the policy's networks (nothing
   * is expanded: the `network` rule denies every request anyway).
   */
  readonly allowedScripts: ReadonlySet<string> | null;
  /** `maxFeeRateSatPerVb` in integer sat/kvB (rounded up), null when unset. */
  readonly maxFeeRateSatPerKvb: bigint | null;
  /** Allowed sighash types. */
  readonly sighashTypes: ReadonlySet<number>;
}

const COMPILED = new WeakSet<CompiledPolicy>();

/**
 * Prepare a policy for evaluation on `network`: the policy is checked again
 * (so a stored JSON document, or an object cast to `SigningPolicy`, can never
 * skip validation or lose a default), then every allowlisted address is
 * decoded and every descriptor expanded (ranged ones over their `range`,
 * default {@linkcode DEFAULT_DESCRIPTOR_RANGE}) into one set of scriptPubKeys.
 * Expanding costs up to 20,000 key derivations, so compile once per policy
 * revision and keep the result.
 *
 * @param policy a checked policy or its JSON form
 * @param network the network the HSM serves
 * @returns the frozen compiled policy
 * @throws ValidationError (422) listing every invalid field, and every address
 *   or descriptor that is not valid on `network` (descriptor texts are never
 *   echoed: they may hold keys)
 */
export function compilePolicy(
  policy: SigningPolicy | SigningPolicyJson,
  network: BitcoinNetwork,
): CompiledPolicy {
  assertNetwork(network);
  const checked = parseSigningPolicy(policy);
  let allowedScripts: Set<string> | null = null;
  if (checked.destinations !== undefined && checked.networks.includes(network)) {
    allowedScripts = expandDestinations(checked.destinations, network);
  }
  const compiled: CompiledPolicy = Object.freeze({
    policy: checked,
    network,
    allowedScripts,
    maxFeeRateSatPerKvb: checked.maxFeeRateSatPerVb === undefined
      ? null
      : BigInt(satPerVbToSatPerKvb(checked.maxFeeRateSatPerVb)),
    sighashTypes: new Set(checked.sighashTypes),
  });
  COMPILED.add(compiled);
  return compiled;
}

function expandDestinations(
  destinations: NonNullable<SigningPolicy["destinations"]>,
  network: BitcoinNetwork,
): Set<string> {
  const scripts = new Set<string>();
  const issues: FieldIssue[] = [];
  for (const [i, address] of (destinations.addresses ?? []).entries()) {
    const script = addressToScript(address, network);
    if (script === null) {
      issues.push({
        path: `policy.destinations.addresses.${i}`,
        // Not echoed: a pasted private key (WIF) must not come back in an error.
        message: `Not a valid ${network} address`,
      });
    } else {
      scripts.add(hex.encode(script));
    }
  }
  for (const [i, entry] of (destinations.descriptors ?? []).entries()) {
    const path = `policy.destinations.descriptors.${i}`;
    try {
      for (const s of descriptorScripts(entry, network)) scripts.add(s);
    } catch (err) {
      // descriptor.ts messages name the problem without echoing key material.
      if (!(err instanceof ValidationError)) throw err;
      issues.push({ path, message: err.message });
    }
  }
  if (issues.length > 0) {
    throw new ValidationError(
      `Invalid signing policy: ${issues[0]!.path}: ${issues[0]!.message}`,
      { status: 422, issues },
    );
  }
  return scripts;
}

// Expanding a ranged descriptor costs one BIP32 derivation per index (a few ms each in
// JavaScript), so a 20-descriptor policy takes tens of seconds. Expansions are pure, so
// they are kept per (network, range, descriptor): a key's policy is expanded once per
// process, and a new revision re-expands only the descriptors it adds. Bounded: at most
// MAX_CACHED_DESCRIPTORS × 1000 scripts, oldest use evicted first.
const MAX_CACHED_DESCRIPTORS = 256;
const EXPANSIONS = new Map<string, readonly string[]>();

function descriptorScripts(
  entry: { descriptor: string; range?: [number, number] | undefined },
  network: BitcoinNetwork,
): readonly string[] {
  const [start, end] = entry.range ?? DEFAULT_DESCRIPTOR_RANGE;
  const cacheKey = `${network}\n${start}\n${end}\n${entry.descriptor}`;
  const hit = EXPANSIONS.get(cacheKey);
  if (hit !== undefined) {
    EXPANSIONS.delete(cacheKey);
    EXPANSIONS.set(cacheKey, hit);
    return hit;
  }
  const parsed = parseDescriptor(entry.descriptor, network);
  const scripts = Object.freeze(
    expandDescriptor(parsed, { start, end }).map((s) => s.scriptPubKeyHex),
  );
  EXPANSIONS.set(cacheKey, scripts);
  if (EXPANSIONS.size > MAX_CACHED_DESCRIPTORS) {
    EXPANSIONS.delete(EXPANSIONS.keys().next().value!);
  }
  return scripts;
}

/** One failed rule. */
export interface PolicyFailure {
  /** Stable rule name, one of {@linkcode POLICY_RULES}. */
  rule: PolicyRule;
  /** Client-safe explanation naming the output/input and the limit. */
  message: string;
}

/** What {@linkcode evaluatePolicy} decided. */
export interface PolicyDecision {
  /** True only when no rule failed. */
  allowed: boolean;
  /** What leaves the key's control (sum of non-own outputs): the amount to record as spent. */
  amountSats: bigint;
  /** Every failed rule, in {@linkcode POLICY_RULES} order; empty when allowed. */
  failures: PolicyFailure[];
}

/** Context of {@linkcode evaluatePolicy}. */
export interface EvaluateContext {
  /** The network the HSM serves. */
  network: BitcoinNetwork;
  /**
   * What the key signed in the last 24 hours (`VelocityRepo.spentSince`),
   * read in the same transaction that will record this request.
   */
  spentLast24hSats: bigint;
}

/**
 * Check a request's facts against a key's policy.
 *
 * @param compiled the key's compiled policy, or null when it has none (denied: `no-policy`)
 * @param facts from `requestFacts`
 * @param ctx network and the key's spend over the last 24 hours
 * @returns the decision with every failed rule
 * @example
 * ```ts
 * const decision = evaluatePolicy(compiled, requestFacts(tx, factsCtx), {
 *   network: "regtest",
 *   spentLast24hSats: await velocity.spentSince(keyId, since),
 * });
 * if (!decision.allowed) throw new PolicyViolationError(decision.failures[0]!.message);
 * ```
 */
export function evaluatePolicy(
  compiled: CompiledPolicy | null,
  facts: RequestFacts,
  ctx: EvaluateContext,
): PolicyDecision {
  if (compiled !== null && !COMPILED.has(compiled)) {
    throw new TypeError(
      `Invalid compiled: expected a value returned by compilePolicy() or null, got ${
        typeOf(compiled)
      }`,
    );
  }
  assertFacts(facts);
  if (typeof ctx !== "object" || ctx === null) {
    throw new TypeError(`Invalid ctx: expected an object, got ${typeOf(ctx)}`);
  }
  assertNetwork(ctx.network);
  if (typeof ctx.spentLast24hSats !== "bigint") {
    throw new TypeError(
      `Invalid ctx.spentLast24hSats: expected a bigint, got ${typeOf(ctx.spentLast24hSats)}`,
    );
  }
  if (ctx.spentLast24hSats < 0n) throw new RangeError("Invalid ctx.spentLast24hSats: negative");

  const amountSats = facts.amountSats;
  const failures: PolicyFailure[] = [];
  const fail = (rule: PolicyRule, message: string) => failures.push({ rule, message });
  if (compiled === null) {
    fail("no-policy", "The key has no signing policy: signing is denied");
    return { allowed: false, amountSats, failures };
  }
  const { policy } = compiled;

  const networkAllowed = policy.networks.includes(ctx.network) && compiled.network === ctx.network;
  if (!networkAllowed) {
    fail("network", `The key's policy does not allow signing on ${ctx.network}`);
  }
  for (const finding of facts.networkFindings) fail("network", finding);

  if (policy.maxAmountPerTxSats !== undefined && amountSats > policy.maxAmountPerTxSats) {
    fail(
      "max-amount-per-tx",
      `Amount of ${amountSats} sat exceeds the per-transaction limit of ${policy.maxAmountPerTxSats} sat`,
    );
  }
  if (
    policy.maxAmountPer24hSats !== undefined &&
    ctx.spentLast24hSats + amountSats > policy.maxAmountPer24hSats
  ) {
    fail(
      "max-amount-per-24h",
      `Amount of ${amountSats} sat plus ${ctx.spentLast24hSats} sat signed in the last 24 hours exceeds the 24-hour limit of ${policy.maxAmountPer24hSats} sat`,
    );
  }

  // Skipped when the network is refused: the allowlist was not expanded for it.
  if (policy.destinations !== undefined && networkAllowed && compiled.allowedScripts !== null) {
    for (const o of facts.outputs) {
      if (o.own || compiled.allowedScripts.has(o.scriptPubKeyHex)) continue;
      fail(
        "destination",
        `Output ${o.index} pays ${
          o.address === null ? "a script without an address" : `"${o.address}"`
        }, which is not on the key's destination allowlist`,
      );
    }
  }

  feeRules(compiled, facts, fail);

  for (const input of facts.inputs) {
    const refused = input.sighashTypes.filter((t) => !compiled.sighashTypes.has(t));
    if (refused.length > 0) {
      fail(
        "sighash",
        `Input ${input.index} uses sighash ${
          refused.map(sighashName).join(", ")
        }, which the key's policy does not allow`,
      );
    }
  }

  if (policy.changeToOwnDerivations) {
    for (const o of facts.outputs) {
      if (!o.claimedChange || o.own) continue;
      fail(
        "change",
        `Output ${o.index} carries a derivation of the signing key but its script is not derived from that key`,
      );
    }
  }

  failures.sort((a, b) => POLICY_RULES.indexOf(a.rule) - POLICY_RULES.indexOf(b.rule));
  return { allowed: failures.length === 0, amountSats, failures };
}

function feeRules(
  compiled: CompiledPolicy,
  facts: RequestFacts,
  fail: (rule: PolicyRule, message: string) => void,
): void {
  const { maxFeeSats } = compiled.policy;
  const maxRate = compiled.maxFeeRateSatPerKvb;
  if (maxFeeSats === undefined && maxRate === null) return;
  const { feeSats, vsize } = facts;
  if (feeSats === null) {
    // Fail closed: without every input's UTXO the fee could be anything.
    fail(
      "fee-unknown",
      "The fee is unknown (some input has no UTXO data): the fee limits cannot be checked",
    );
    return;
  }
  if (maxFeeSats !== undefined && feeSats > maxFeeSats) {
    fail("max-fee", `Fee of ${feeSats} sat exceeds the limit of ${maxFeeSats} sat`);
  }
  if (maxRate === null) return;
  if (vsize === null || vsize <= 0) {
    fail("fee-unknown", "The transaction size is unknown: the fee rate limit cannot be checked");
    return;
  }
  // fee / vsize > rate / 1000, in integers. The vsize of unsigned inputs is the worst case
  // (72-byte ECDSA signatures), so the rate is at most a hair below what the signed
  // transaction pays; the absolute max-fee rule is exact.
  if (feeSats * 1000n > maxRate * BigInt(vsize)) {
    const paid = (feeSats * 1000n) / BigInt(vsize);
    fail(
      "max-fee-rate",
      `Fee rate of ${formatRate(paid)} sat/vB exceeds the limit of ${formatRate(maxRate)} sat/vB`,
    );
  }
}

function formatRate(satPerKvb: bigint): string {
  return formatSatPerVb(Number(satPerKvb));
}

function assertFacts(facts: RequestFacts): void {
  if (
    typeof facts !== "object" || facts === null || !Array.isArray(facts.outputs) ||
    !Array.isArray(facts.inputs) || !Array.isArray(facts.networkFindings) ||
    typeof facts.amountSats !== "bigint"
  ) {
    throw new TypeError(
      `Invalid facts: expected a value from requestFacts(), got ${typeOf(facts)}`,
    );
  }
}

/** Type of an argument, for TypeError messages. */
function typeOf(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
}
