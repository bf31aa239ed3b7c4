/**
 * The scripts a PSBT may be funded from: addresses are `addr()` descriptors,
 * so both sources become one list of {@linkcode DescriptorScript}s whose coins
 * the service then fetches. Pure: no I/O.
 *
 * @module
 */
import { ValidationError } from "../errors/app_error.ts";
import type { BitcoinNetwork } from "./network.ts";
import { describeAddress } from "./address.ts";
import { type DescriptorScript, expandDescriptor, parseDescriptor } from "./descriptor.ts";

/** A descriptor to fund from, with the indexes to scan when it is ranged. */
export interface DescriptorFunding {
  descriptor: string;
  /** Both ends inclusive; default {@linkcode DEFAULT_DESCRIPTOR_RANGE}. */
  range?: { start: number; end: number };
}

/** The BIP44 gap limit: wallets stop looking after 20 unused addresses. */
export const DEFAULT_DESCRIPTOR_RANGE: Readonly<{ start: number; end: number }> = Object.freeze({
  start: 0,
  end: 19,
});

/** Most scripts one request may fund from: each is one backend lookup. */
export const MAX_FUNDING_SCRIPTS = 100;

function reject(path: string, message: string): ValidationError {
  return new ValidationError(`Invalid request: ${path}: ${message}`, {
    status: 422,
    issues: [{ path, message }],
  });
}

/** Re-home a descriptor module error on the request field it came from. */
function at(path: string, err: unknown): unknown {
  if (!(err instanceof ValidationError)) return err;
  const message = err.issues[0]?.message ?? err.message;
  return reject(path, message);
}

/**
 * Expand the funding sources of a request, checked and without repeats.
 *
 * @param addresses addresses whose coins may be spent
 * @param descriptors descriptors whose coins may be spent
 * @param network the configured network
 * @throws ValidationError 422 naming the field: bad address or descriptor,
 *   a script whose spending conditions are unknown, too many scripts
 */
export function fundingScripts(
  addresses: readonly string[],
  descriptors: readonly DescriptorFunding[],
  network: BitcoinNetwork,
): DescriptorScript[] {
  if (addresses.length + descriptors.length === 0) {
    throw reject("fundFrom", "give at least one address or descriptor");
  }
  const groups: { path: string; scripts: DescriptorScript[] }[] = [];
  let total = 0;
  const add = (path: string, scripts: DescriptorScript[]) => {
    total += scripts.length;
    if (total > MAX_FUNDING_SCRIPTS) {
      throw reject(path, `more than ${MAX_FUNDING_SCRIPTS} scripts to scan in one request`);
    }
    groups.push({ path, scripts });
  };
  for (const [i, address] of addresses.entries()) {
    const path = `fundFrom.addresses[${i}]`;
    const described = describeAddress(address, network);
    if (!described.valid) throw reject(path, described.reason);
    add(path, expandOne(`addr(${address})`, DEFAULT_DESCRIPTOR_RANGE, network, path));
  }
  for (const [i, d] of descriptors.entries()) {
    const path = `fundFrom.descriptors[${i}]`;
    add(path, expandOne(d.descriptor, d.range ?? DEFAULT_DESCRIPTOR_RANGE, network, path));
  }
  const seen = new Set<string>();
  const out: DescriptorScript[] = [];
  for (const { path, scripts } of groups) {
    for (const s of scripts) {
      if (s.spend === null) {
        throw reject(
          path,
          `cannot spend from ${s.address} without its script: use a descriptor such as wsh(...) or pass the coins as "utxos" with redeemScriptHex/witnessScriptHex`,
        );
      }
      if (seen.has(s.scriptPubKeyHex)) continue;
      seen.add(s.scriptPubKeyHex);
      out.push(s);
    }
  }
  return out;
}

function expandOne(
  text: string,
  range: { start: number; end: number },
  network: BitcoinNetwork,
  path: string,
): DescriptorScript[] {
  try {
    const parsed = parseDescriptor(text, network);
    // Checked here, before any key is derived: derivation costs CPU per index.
    if (parsed.ranged && range.end - range.start + 1 > MAX_FUNDING_SCRIPTS) {
      throw reject(`${path}.range`, `at most ${MAX_FUNDING_SCRIPTS} indexes`);
    }
    return expandDescriptor(parsed, range);
  } catch (err) {
    throw err instanceof ValidationError && err.message.startsWith(`Invalid request: ${path}`)
      ? err
      : at(path, err);
  }
}
