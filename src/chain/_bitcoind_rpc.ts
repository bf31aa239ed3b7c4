/**
 * Bitcoin Core JSON-RPC vocabulary for `BitcoindBackend`: the error codes it
 * acts on and zod schemas of the replies it reads (tests/vectors/bitcoind/RPC.md).
 *
 * @module
 */
import { z } from "zod";
import { HASH_HEX } from "./_common.ts";

/** Core's RPC error codes this adapter acts on (src/rpc/protocol.h). */
export const RPC = {
  /** RPC_INVALID_ADDRESS_OR_KEY: unknown txid/block, or a bad address. */
  invalidAddressOrKey: -5,
  /** RPC_INVALID_PARAMETER: e.g. "Scan already in progress". */
  invalidParameter: -8,
  /** RPC_DESERIALIZATION_ERROR: the raw transaction does not decode. */
  deserialization: -22,
  /** RPC_VERIFY_ERROR: e.g. missing or spent inputs. */
  verifyError: -25,
  /** RPC_VERIFY_REJECTED: mempool policy or consensus refusal. */
  verifyRejected: -26,
  /** RPC_IN_WARMUP: the node is still loading. */
  inWarmup: -28,
  /** RPC_METHOD_NOT_FOUND. */
  methodNotFound: -32601,
} as const;

const height = z.number().int().min(0);
const hash = z.string().regex(HASH_HEX);
// Amounts (BTC) and fee rates (BTC/kvB) past the 21M BTC supply are no real answer.
const btc = z.number().finite().min(0).max(21_000_000);
const satPerVb = z.number().finite().min(0);

/** Reply schema (fields this adapter reads; others pass unchecked). */
export const EnvelopeSchema = z.object({
  result: z.unknown().optional(),
  error: z.object({ code: z.number().int(), message: z.string() }).nullable().optional(),
  id: z.union([z.number(), z.string(), z.null()]).optional(),
});

/** Reply schema (fields this adapter reads; others pass unchecked). */
export const BlockchainInfoSchema = z.object({
  chain: z.string(),
  blocks: height,
  bestblockhash: hash,
  // An array of strings since v28; one string before (and with -deprecatedrpc=warnings).
  warnings: z.union([z.string(), z.array(z.string())]).optional(),
});

/** Reply schema (fields this adapter reads; others pass unchecked). */
export const SmartFeeSchema = z.object({
  feerate: btc.optional(),
  errors: z.array(z.string()).optional(),
  blocks: z.number().int().min(0),
});

/** Reply schema (fields this adapter reads; others pass unchecked). */
export const ScanSchema = z.object({
  success: z.boolean(),
  height,
  unspents: z.array(z.object({
    txid: hash,
    vout: z.number().int().min(0),
    scriptPubKey: z.string().regex(/^(?:[0-9a-f]{2})*$/),
    amount: btc,
    height,
  })),
});

/** Reply schema (fields this adapter reads; others pass unchecked). */
export const RawTxSchema = z.object({
  txid: hash,
  hex: z.string().regex(/^(?:[0-9a-f]{2})+$/),
  blockhash: hash.optional(),
  confirmations: z.number().int().optional(),
});

/** Reply schema (fields this adapter reads; others pass unchecked). */
export const BlockHeaderSchema = z.object({ hash, height, confirmations: z.number().int() });

/** Reply schema (fields this adapter reads; others pass unchecked). */
export const MempoolAcceptSchema = z.array(z.object({
  txid: hash,
  // Absent when the transaction was not fully validated (package case).
  allowed: z.boolean().optional(),
  "reject-reason": z.string().optional(),
  "reject-details": z.string().optional(),
  "package-error": z.string().optional(),
  vsize: z.number().int().min(0).optional(),
  fees: z.object({ base: btc }).optional(),
})).length(1);

/** Reply schema (fields this adapter reads; others pass unchecked). */
export const TimedBlockHeaderSchema = BlockHeaderSchema.extend({ time: z.number().int().min(0) });

/**
 * Reply schema (fields this adapter reads; others pass unchecked). `bytes` is
 * the sum of BIP 141 virtual sizes; `total_fee` (Core ≥ 22) ignores
 * `prioritisetransaction` deltas; `loaded` is false while mempool.dat loads.
 */
export const MempoolInfoSchema = z.object({
  loaded: z.boolean().optional(),
  size: z.number().int().min(0),
  bytes: z.number().int().min(0),
  total_fee: btc.optional(),
});

/**
 * Reply schema of `getrawmempool true` (fields this adapter reads; others
 * pass unchecked): txid → entry with its vsize and unmodified fee in BTC.
 */
export const RawMempoolSchema = z.record(
  hash,
  z.object({
    vsize: z.number().int().min(1),
    fees: z.object({ base: btc }),
  }),
);

/**
 * Reply schema of `getblockstats <height> ["feerate_percentiles","height"]`:
 * the 10th, 25th, 50th, 75th and 90th percentile fee rates in sat/vB.
 */
export const BlockFeeStatsSchema = z.object({
  height,
  feerate_percentiles: z.tuple([satPerVb, satPerVb, satPerVb, satPerVb, satPerVb]),
});
