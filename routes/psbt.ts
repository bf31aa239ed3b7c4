/**
 * The PSBT lifecycle: `POST /v1/psbt` (create), `/v1/psbt/decode`,
 * `/v1/psbt/combine`, `/v1/psbt/finalize`. Amounts in and out are whole
 * satoshis as decimal strings (safe integers are accepted on input).
 */
import { createRoute, z } from "@hono/zod-openapi";
import {
  AUTH_PROBLEMS,
  BEARER,
  createRouter,
  jsonBody,
  jsonResponse,
  problem,
} from "./_openapi.ts";
import { requireScope } from "./_middleware/auth.ts";
import { type IdempotencyDeps, optionalIdempotency } from "./_middleware/idempotency.ts";
import { SatsString, Txid } from "./_schemas.ts";
import {
  formatSatPerVb as satPerVb,
  MAX_MONEY_SATS,
  satPerVbToSatPerKvb,
} from "../src/bitcoin/amount.ts";
import {
  MAX_FEE_RATE_SAT_PER_KVB,
  MIN_FEE_RATE_SAT_PER_KVB,
  type OutputRequest,
} from "../src/bitcoin/psbt_create.ts";
import { MAX_PSBT_BYTES } from "../src/bitcoin/psbt_parse.ts";
import { MAX_DESCRIPTOR_LENGTH } from "../src/bitcoin/descriptor.ts";
import {
  type CreatePsbtCommand,
  type FeeChoice,
  type FundingSource,
  MAX_FUNDING_SCRIPTS,
  MAX_FUNDING_UTXOS,
  type PsbtService,
} from "../src/bitcoin/psbt_service.ts";
import type { UtxoInput } from "../src/bitcoin/psbt_utxo.ts";
import type { RiskService } from "../src/ml/risk/risk_service.ts";

// Base64 is 4/3 of the bytes; hex is 2×. The body limit applies first anyway.
const MAX_PSBT_TEXT = MAX_PSBT_BYTES * 2;

const Sats = z.union([
  z.string().regex(/^(0|[1-9]\d{0,15})$/, "must be whole satoshis as a digit string"),
  z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
]).transform((v, ctx) => {
  const sats = BigInt(v);
  if (sats > MAX_MONEY_SATS) {
    ctx.addIssue({ code: "custom", message: "must not exceed 21,000,000 BTC" });
    return z.NEVER;
  }
  return sats;
}).openapi({
  description: "Satoshis: a decimal string (preferred) or a safe integer",
  example: "50000",
});

const Hex = (max: number) =>
  z.string().max(max).regex(/^([0-9a-fA-F]{2})*$/, "must be even-length hex");

const PsbtText = z.string().min(1).max(MAX_PSBT_TEXT).openapi({
  description: "A PSBT, base64 (BIP174) or hex",
});

const Output = z.union([
  z.object({ address: z.string().min(1).max(120), amountSats: Sats }).strict(),
  z.object({
    opReturnHex: Hex(160).openapi({ description: "OP_RETURN data, ≤ 80 bytes" }),
  }).strict(),
]);

const Utxo = z.object({
  txid: Txid,
  vout: z.number().int().min(0).max(0xffffffff),
  valueSats: Sats,
  scriptPubKeyHex: Hex(10_000).min(2),
  confirmations: z.number().int().min(0).optional(),
  nonWitnessUtxoHex: Hex(800_000).optional().openapi({
    description: "The whole previous transaction; required for legacy (P2PKH, P2SH) coins",
  }),
  redeemScriptHex: Hex(1040).optional(),
  witnessScriptHex: Hex(20_000).optional(),
  tapInternalKeyHex: Hex(64).optional(),
}).strict().openapi("Utxo");

const CreateBody = z.object({
  outputs: z.array(Output).min(1).max(250),
  utxos: z.array(Utxo).min(1).max(MAX_FUNDING_UTXOS).optional().openapi({
    description: "Coins to fund from. Give either `utxos` or `fundFrom`.",
  }),
  fundFrom: z.object({
    addresses: z.array(z.string().min(1).max(120)).min(1).max(MAX_FUNDING_SCRIPTS).optional()
      .openapi({ description: "P2WPKH, P2TR (key path) or P2PKH addresses" }),
    descriptors: z.array(
      z.object({
        descriptor: z.string().min(1).max(MAX_DESCRIPTOR_LENGTH).openapi({
          description:
            "BIP380 output descriptor with public keys only: pkh, wpkh, sh(wpkh), tr (key path), wsh(multi|sortedmulti), sh(wsh(...)), addr; `#checksum` optional",
          example:
            "wpkh([d34db33f/84h/1h/0h]tpubD6NzVbkrYhZ4WaWSyoBvQwbpLkojyoTZPRsgXELWz3Popb3qkjcJyJUGLnL4qHHoQvao8ESaAstxYSnhyswJ76uZPStJRJCTKvosUCJZL5B/0/*)",
        }),
        range: z.union([
          z.number().int().min(0).max(MAX_FUNDING_SCRIPTS - 1),
          z.tuple([z.number().int().min(0), z.number().int().min(0)]),
        ]).optional().openapi({
          description:
            "Indexes to scan for a ranged descriptor, as in Bitcoin Core: `end` or `[start, end]`, inclusive (default [0, 19])",
        }),
      }).strict(),
    ).min(1).max(10).optional(),
  }).strict().optional().openapi({
    description:
      "Fetch the coins of these addresses and descriptors from the chain backend (at most 100 scripts in all); descriptor inputs carry their BIP32 origins for the signer. Bitcoin Core reports confirmed coins only.",
  }),
  feeRateSatPerVb: z.number().positive().max(MAX_FEE_RATE_SAT_PER_KVB / 1000).optional()
    .openapi({ description: "Target fee rate, sat/vB (up to 3 decimals). Or `confTarget`." }),
  confTarget: z.number().int().min(1).max(1008).optional().openapi({
    description: "Confirm within this many blocks, using the chain backend's estimate",
  }),
  changeAddress: z.string().min(1).max(120),
  rbf: z.boolean().optional().openapi({
    description: "Signal BIP125 replaceability (default true)",
  }),
  locktime: z.number().int().min(0).max(0xffffffff).optional(),
  psbtVersion: z.union([z.literal(0), z.literal(2)]).optional().openapi({
    description: "0 (BIP174, default) or 2 (BIP370)",
  }),
  selection: z.enum(["auto", "all"]).optional().openapi({
    description: "`auto` (default) runs coin selection; `all` spends every coin given",
  }),
  minConfirmations: z.number().int().min(0).max(1_000_000).optional(),
}).strict().superRefine((b, ctx) => {
  if ((b.utxos === undefined) === (b.fundFrom === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["utxos"],
      message: "give exactly one of utxos, fundFrom",
    });
  }
  if (b.fundFrom !== undefined && !b.fundFrom.addresses && !b.fundFrom.descriptors) {
    ctx.addIssue({
      code: "custom",
      path: ["fundFrom"],
      message: "give addresses, descriptors or both",
    });
  }
  if ((b.feeRateSatPerVb === undefined) === (b.confTarget === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["feeRateSatPerVb"],
      message: "give exactly one of feeRateSatPerVb, confTarget",
    });
  }
  if (
    b.feeRateSatPerVb !== undefined &&
    satPerVbToSatPerKvb(b.feeRateSatPerVb) < MIN_FEE_RATE_SAT_PER_KVB
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["feeRateSatPerVb"],
      message: `must be at least ${MIN_FEE_RATE_SAT_PER_KVB / 1000} sat/vB (minimum relay fee)`,
    });
  }
}).openapi("CreatePsbtRequest");

const CreatedSchema = z.object({
  psbt: z.string().openapi({ description: "The unsigned PSBT, base64" }),
  psbtVersion: z.union([z.literal(0), z.literal(2)]),
  feeSats: SatsString,
  vsize: z.number().int().openapi({ description: "Estimated once signed (worst-case signatures)" }),
  feeRateSatPerVb: z.string().openapi({ description: "Paid over the estimated vsize, decimal" }),
  targetFeeRateSatPerVb: z.string(),
  feeRateSource: z.enum(["explicit", "estimate"]),
  estimateTargetBlocks: z.number().int().nullable(),
  changeOutputIndex: z.number().int().nullable(),
  changeSats: SatsString,
  inputsSats: SatsString,
  outputsSats: SatsString,
  selectedInputs: z.array(
    z.object({ txid: z.string(), vout: z.number().int(), valueSats: SatsString }),
  ),
  algorithm: z.string(),
  warnings: z.array(z.string()),
}).openapi("CreatedPsbt");

const DecodeBody = z.object({
  psbt: PsbtText,
  verifySignatures: z.boolean().optional().openapi({
    description:
      "Also verify every signature (default false: `signatureStatus` is `not-checked`; finalize always verifies)",
  }),
}).strict();

const Warning = z.object({ code: z.string(), message: z.string() });

const DecodedSchema = z.object({
  psbtVersion: z.union([z.literal(0), z.literal(2)]),
  txVersion: z.number().int(),
  locktime: z.number().int(),
  rbf: z.boolean(),
  txid: z.string().nullable().openapi({ description: "Final txid once every input is finalized" }),
  inputs: z.array(z.object({
    index: z.number().int(),
    outpoint: z.string(),
    sequence: z.number().int(),
    valueSats: SatsString.nullable(),
    scriptType: z.string().nullable(),
    address: z.string().nullable(),
    signed: z.boolean(),
    finalized: z.boolean(),
    signatureStatus: z.enum(["unsigned", "valid", "invalid", "unverifiable", "not-checked"]),
    sighashTypes: z.array(z.string()),
    weight: z.number().int().nullable(),
    weightExact: z.boolean(),
  })),
  outputs: z.array(z.object({
    index: z.number().int(),
    address: z.string().nullable(),
    valueSats: SatsString,
    scriptType: z.string(),
    scriptPubKeyHex: z.string(),
    isChange: z.boolean(),
    dust: z.boolean(),
  })),
  totalInputSats: SatsString.nullable(),
  totalOutputSats: SatsString,
  feeSats: SatsString.nullable(),
  weight: z.number().int().nullable(),
  vsize: z.number().int().nullable(),
  feeRate: z.object({
    satPerVb: z.string(),
    exact: z.boolean().openapi({ description: "False when the size is estimated" }),
  }).nullable(),
  currentFeeRateSatPerVb: z.string().nullable().openapi({
    description: "The backend's estimate the fat-finger guard compared against",
  }),
  warnings: z.array(Warning).openapi({
    description:
      "Stable codes: missing-utxo, fee-rate-high, fee-high, outputs-exceed-inputs, dust-output, non-standard-script, non-standard-version, network-mismatch, non-default-sighash, invalid-signature, script-mismatch, witness-utxo-for-legacy-input, size-unknown",
  }),
  risk: z.object({
    score: z.number().nullable().openapi({
      description:
        "Anomaly score in (0, 1] of the unsupervised tx-risk model (higher: less like the real transactions it was trained on; not a fraud probability); null without the model",
    }),
    modelVersion: z.string().nullable(),
    reasons: z.array(z.object({
      feature: z.string(),
      value: z.number(),
      percentile: z.number(),
      message: z.string(),
    })),
    denyListHits: z.array(z.object({
      output: z.number().int(),
      address: z.string(),
      list: z.enum(["ofac", "ransomware"]),
      source: z.string(),
    })),
  }).nullable().openapi({ description: "Null when risk scoring is not enabled on this edge" }),
}).openapi("DecodedPsbt");

const CombineBody = z.object({ psbts: z.array(PsbtText).min(2).max(16) }).strict();

const PsbtOnly = z.object({
  psbt: z.string(),
  psbtVersion: z.union([z.literal(0), z.literal(2)]),
}).openapi("Psbt");

const FinalizeBody = z.object({
  psbt: PsbtText,
  extract: z.boolean().optional().openapi({
    description: "Also extract the network transaction (default true)",
  }),
}).strict();

const FinalizedSchema = z.object({
  psbt: z.string(),
  psbtVersion: z.union([z.literal(0), z.literal(2)]),
  transaction: z.object({
    hex: z.string(),
    txid: z.string(),
    wtxid: z.string(),
    weight: z.number().int(),
    vsize: z.number().int(),
    feeSats: SatsString.nullable(),
  }).nullable(),
}).openapi("FinalizedPsbt");

const PSBT_PROBLEMS = {
  422: problem("Malformed, wrong-network or unusable PSBT; the detail says what and where"),
  ...AUTH_PROBLEMS,
} as const;

const str = (v: bigint | null) => (v === null ? null : v.toString());

function toOutput(o: z.infer<typeof Output>): OutputRequest {
  return "opReturnHex" in o ? { opReturnHex: o.opReturnHex } : o;
}

function toUtxo(u: z.infer<typeof Utxo>): UtxoInput {
  // `exactOptionalPropertyTypes`: optional fields must be absent, not undefined.
  const utxo: UtxoInput = {
    txid: u.txid,
    vout: u.vout,
    valueSats: u.valueSats,
    scriptPubKeyHex: u.scriptPubKeyHex,
  };
  if (u.confirmations !== undefined) utxo.confirmations = u.confirmations;
  if (u.nonWitnessUtxoHex !== undefined) utxo.nonWitnessUtxoHex = u.nonWitnessUtxoHex;
  if (u.redeemScriptHex !== undefined) utxo.redeemScriptHex = u.redeemScriptHex;
  if (u.witnessScriptHex !== undefined) utxo.witnessScriptHex = u.witnessScriptHex;
  if (u.tapInternalKeyHex !== undefined) utxo.tapInternalKeyHex = u.tapInternalKeyHex;
  return utxo;
}

function toCommand(b: z.infer<typeof CreateBody>): CreatePsbtCommand {
  const funding: FundingSource = b.utxos !== undefined ? { utxos: b.utxos.map(toUtxo) } : {
    addresses: b.fundFrom?.addresses ?? [],
    descriptors: (b.fundFrom?.descriptors ?? []).map((d) => {
      if (d.range === undefined) return { descriptor: d.descriptor };
      const [start, end] = typeof d.range === "number" ? [0, d.range] : d.range;
      return { descriptor: d.descriptor, range: { start, end } };
    }),
  };
  const fee: FeeChoice = b.feeRateSatPerVb !== undefined
    ? { satPerKvb: satPerVbToSatPerKvb(b.feeRateSatPerVb) }
    : { confTarget: b.confTarget ?? 6 };
  const command: CreatePsbtCommand = {
    outputs: b.outputs.map(toOutput),
    funding,
    fee,
    changeAddress: b.changeAddress,
  };
  if (b.rbf !== undefined) command.rbf = b.rbf;
  if (b.locktime !== undefined) command.locktime = b.locktime;
  if (b.psbtVersion !== undefined) command.psbtVersion = b.psbtVersion;
  if (b.selection !== undefined) command.selection = b.selection;
  if (b.minConfirmations !== undefined) command.minConfirmations = b.minConfirmations;
  return command;
}

/** Dependencies of {@linkcode psbtRoutes}. */
export interface PsbtRouteDeps extends IdempotencyDeps {
  psbts: PsbtService;
  /** Deny lists and the risk model; null when not enabled. */
  risk: RiskService | null;
}

/** The `/v1/psbt` routes. */
export function psbtRoutes(deps: PsbtRouteDeps) {
  return createRouter()
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/psbt",
        tags: ["psbt"],
        summary: "Create an unsigned PSBT: coin selection, change, fee, RBF, standardness checks",
        description:
          "Fund from explicit `utxos` or from the coins of `fundFrom` addresses and descriptors, at `feeRateSatPerVb` or the estimate for `confTarget`. Change below the dust threshold is added to the fee. An optional `Idempotency-Key` replays the first answer (coin selection may otherwise differ between calls).",
        security: BEARER,
        middleware: [
          requireScope("psbt"),
          optionalIdempotency(deps),
        ] as const,
        request: { body: jsonBody(CreateBody) },
        responses: {
          201: jsonResponse(CreatedSchema, "The unsigned PSBT and its pricing"),
          ...PSBT_PROBLEMS,
          503: problem("Chain backend needed (fundFrom, confTarget) but absent or unreachable"),
          504: problem("Chain backend timed out"),
        },
      }),
      async (c) => {
        const created = await deps.psbts.create(toCommand(c.req.valid("json")));
        return c.json({
          psbt: created.psbtBase64,
          psbtVersion: created.psbtVersion,
          feeSats: created.feeSats.toString(),
          vsize: created.vsize,
          feeRateSatPerVb: satPerVb(created.feeRateSatPerKvb),
          targetFeeRateSatPerVb: satPerVb(created.targetFeeRateSatPerKvb),
          feeRateSource: created.feeRateSource,
          estimateTargetBlocks: created.estimateTargetBlocks,
          changeOutputIndex: created.changeOutputIndex,
          changeSats: created.changeSats.toString(),
          inputsSats: created.inputsSats.toString(),
          outputsSats: created.outputsSats.toString(),
          selectedInputs: created.selectedInputs.map((i) => ({
            txid: i.txid,
            vout: i.vout,
            valueSats: i.valueSats.toString(),
          })),
          algorithm: created.algorithm,
          warnings: created.warnings,
        }, 201);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/psbt/decode",
        tags: ["psbt"],
        summary: "Decode and check a PSBT: inputs, outputs, fee, vsize, fee rate, warnings",
        description:
          "Fee and fee rate are exact when every input carries its UTXO and is finalized; otherwise the size is estimated (`feeRate.exact: false`) or the fee unknown (`missing-utxo`). A network mismatch is a warning here; combine and finalize refuse it.",
        security: BEARER,
        middleware: [requireScope("psbt")] as const,
        request: { body: jsonBody(DecodeBody) },
        responses: { 200: jsonResponse(DecodedSchema, "The decoded PSBT"), ...PSBT_PROBLEMS },
      }),
      async (c) => {
        const body = c.req.valid("json");
        const r = await deps.psbts.decode(body.psbt, body.verifySignatures ?? false);
        const { tenant, keyId } = c.get("principal");
        const risk = deps.risk === null ? null : await deps.risk.assessPsbt(
          { tenant, keyId },
          body.psbt,
          r.currentFeeRateSatPerKvb === null ? null : r.currentFeeRateSatPerKvb / 1000,
        );
        return c.json({
          psbtVersion: r.psbtVersion,
          txVersion: r.txVersion,
          locktime: r.locktime,
          rbf: r.rbf,
          txid: r.txid,
          inputs: r.inputs.map((i) => ({
            index: i.index,
            outpoint: i.outpoint,
            sequence: i.sequence,
            valueSats: str(i.valueSats),
            scriptType: i.scriptType,
            address: i.address,
            signed: i.signed,
            finalized: i.finalized,
            signatureStatus: i.signatureStatus,
            sighashTypes: i.sighashTypes,
            weight: i.weight,
            weightExact: i.weightExact,
          })),
          outputs: r.outputs.map((o) => ({ ...o, valueSats: o.valueSats.toString() })),
          totalInputSats: str(r.totalInputSats),
          totalOutputSats: r.totalOutputSats.toString(),
          feeSats: str(r.feeSats),
          weight: r.weight,
          vsize: r.vsize,
          feeRate: r.feeRate === null
            ? null
            : { satPerVb: satPerVb(r.feeRate.satPerKvb), exact: r.feeRate.exact },
          currentFeeRateSatPerVb: r.currentFeeRateSatPerKvb === null
            ? null
            : satPerVb(r.currentFeeRateSatPerKvb),
          warnings: r.warnings,
          risk,
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/psbt/combine",
        tags: ["psbt"],
        summary: "BIP174 Combiner: merge PSBTs of the same transaction",
        security: BEARER,
        middleware: [requireScope("psbt")] as const,
        request: { body: jsonBody(CombineBody) },
        responses: { 200: jsonResponse(PsbtOnly, "The combined PSBT"), ...PSBT_PROBLEMS },
      }),
      (c) => {
        const r = deps.psbts.combine(c.req.valid("json").psbts);
        return c.json({ psbt: r.psbtBase64, psbtVersion: r.psbtVersion }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/psbt/finalize",
        tags: ["psbt"],
        summary: "BIP174 Finalizer and Extractor: final scripts, then the raw transaction",
        description:
          "Signatures are verified before finalizing. Broadcast the extracted `transaction.hex` with `POST /v1/tx/broadcast`.",
        security: BEARER,
        middleware: [requireScope("psbt")] as const,
        request: { body: jsonBody(FinalizeBody) },
        responses: {
          200: jsonResponse(FinalizedSchema, "The finalized PSBT and transaction"),
          ...PSBT_PROBLEMS,
        },
      }),
      (c) => {
        const body = c.req.valid("json");
        const r = deps.psbts.finalize(body.psbt, body.extract ?? true);
        const t = r.transaction;
        return c.json({
          psbt: r.psbt.psbtBase64,
          psbtVersion: r.psbt.psbtVersion,
          transaction: t === null ? null : { ...t, feeSats: str(t.feeSats) },
        }, 200);
      },
    );
}
