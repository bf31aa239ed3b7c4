/**
 * Splitting a model's traffic between versions: weights, sticky per caller,
 * and an optional shadow version. Pure.
 *
 * Sticky: the version is a function of (model, caller) only, so one API key
 * keeps seeing one version while the table is unchanged, and the share of
 * callers on each version follows the weights.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";

/** One version's share of the traffic. */
export interface Route {
  /** A loaded version. */
  version: string;
  /** Relative weight, 0..10000. */
  weight: number;
}

/** A model's routing table. */
export interface RoutingTable {
  /** Model name. */
  model: string;
  /** Versions answering callers, by weight. */
  routes: Route[];
  /** A version run on the same input whose answer is recorded, never returned. */
  shadowVersion: string | null;
}

const utf8 = new TextEncoder();

/**
 * The version answering `caller`.
 *
 * @param table the model's table (weights sum above 0)
 * @param caller a stable caller id (the API key id)
 */
export function pickVersion(table: RoutingTable, caller: string): string {
  const total = table.routes.reduce((n, r) => n + r.weight, 0);
  if (table.routes.length === 0 || !(total > 0)) {
    throw new RangeError(`Routing table of ${table.model} has no positive weight`);
  }
  const point = stickyPoint(table.model, caller) * total;
  let acc = 0;
  for (const r of table.routes) {
    acc += r.weight;
    if (point < acc) return r.version;
  }
  return table.routes[table.routes.length - 1]!.version;
}

/** A uniform number in [0, 1) from (model, caller): the first 48 bits of SHA-256. */
export function stickyPoint(model: string, caller: string): number {
  const d = sha256(utf8.encode(`${model}\n${caller}`));
  let n = 0;
  for (let i = 0; i < 6; i++) n = n * 256 + d[i]!;
  return n / 2 ** 48;
}

/** The table used until an admin sets one: the newest version takes everything. */
export function defaultRouting(model: string, versions: readonly string[]): RoutingTable {
  const newest = versions[versions.length - 1];
  if (newest === undefined) throw new RangeError(`Model ${model} has no version`);
  return { model, routes: [{ version: newest, weight: 1 }], shadowVersion: null };
}
