/**
 * Signing through the HSM: `POST /v1/sign/psbt` (scope `sign`,
 * `Idempotency-Key` required), `POST /v1/messages/sign`, and
 * `POST /v1/messages/verify` (BIP-322 and legacy; no key needed).
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
import { idempotency, type IdempotencyDeps } from "./_middleware/idempotency.ts";
import { IDEMPOTENCY_KEY_HEADER } from "../src/idempotency/mod.ts";
import type { EdgeSignService } from "../src/hsm/sign_service.ts";
import type { HsmSigner } from "../src/hsm/signer.ts";
import type { BitcoinNetwork } from "../src/bitcoin/network.ts";
import { verifyMessage } from "../src/bitcoin/message.ts";
import { parseDerivationPath } from "../src/bitcoin/derivation_path.ts";
import { NO_HSM, optionalDep } from "./_deps.ts";

const KeyId = z.string().regex(/^hk_[0-9a-f]{24}$/, "not a key id");

const SignPsbtBody = z.object({
  keyId: KeyId,
  psbt: z.string().min(1).max(8_000_000).openapi({ description: "PSBT, base64 or hex" }),
}).strict();

const SignedPsbtSchema = z.object({
  psbt: z.string().openapi({ description: "The PSBT with the key's signatures added, base64" }),
  keyId: z.string(),
  signatures: z.array(z.object({
    input: z.number().int(),
    pubkeyHex: z.string(),
    scheme: z.enum(["ecdsa", "schnorr"]),
    sighashType: z.number().int(),
  })),
  amountSats: z.string().openapi({
    description: "What leaves the key's control, as the HSM counted it",
  }),
}).openapi("SignedPsbt");

const Path = z.union([
  z.array(z.number().int().min(0).max(0xffffffff)).max(16),
  z.string().regex(/^m(\/\d{1,10}['h]?){0,16}$/, "a BIP32 path such as m/84'/0'/0'/0/3"),
]).default([]).transform((p, ctx) => {
  if (typeof p !== "string") return p;
  try {
    return parseDerivationPath(p);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

const SignMessageBody = z.object({
  keyId: KeyId,
  address: z.string().min(1).max(120),
  path: Path.openapi({ description: "Derivation of the address's key; [] or m for single keys" }),
  message: z.string().max(65_536),
  format: z.enum(["simple", "full", "legacy"]).default("simple").openapi({
    description: "BIP-322 simple or full, or legacy signmessage (P2PKH only)",
  }),
}).strict();

const VerifyBody = z.object({
  address: z.string().min(1).max(120),
  message: z.string().max(65_536),
  signature: z.string().max(100_000),
}).strict();

const HSM_PROBLEMS = {
  502: problem("The HSM answered something the edge could not accept; nothing was released"),
  503: problem("No HSM configured, or it is unreachable"),
  504: problem("The HSM did not answer in time: retry with the same Idempotency-Key"),
} as const;

/** Dependencies of {@linkcode signingRoutes}. */
export interface SigningRouteDeps extends IdempotencyDeps {
  signer: HsmSigner | null;
  signing: EdgeSignService | null;
  network: BitcoinNetwork;
}

/** `/v1/sign/psbt` and `/v1/messages/*`. */
export function signingRoutes(deps: SigningRouteDeps) {
  const signing = optionalDep(deps.signing, NO_HSM);
  const signer = optionalDep(deps.signer, NO_HSM);
  const required = idempotency(deps.idempotency, {
    required: true,
    ttlHours: deps.idempotencyTtlHours,
    lockMs: deps.idempotencyLockMs,
    logger: deps.logger,
  });
  return createRouter()
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/sign/psbt",
        tags: ["signing"],
        summary: "Have an HSM key sign its inputs of a PSBT, under the key's policy",
        description:
          "Requires `Idempotency-Key`: a retry after a timeout gets the first signature, never a second one. The edge checks the HSM's answer (unchanged PSBT, valid new signatures by the key on its own inputs) before releasing it.",
        security: BEARER,
        middleware: [requireScope("sign"), required] as const,
        request: { body: jsonBody(SignPsbtBody) },
        responses: {
          200: jsonResponse(SignedPsbtSchema, "The signed PSBT"),
          404: problem("No such key"),
          409: problem("The key cannot sign (disabled or destroyed), or the key was reused"),
          422: problem(
            "Bad PSBT, no input of the key, taproot on an ECDSA-only holder, or denied by policy (rules listed)",
          ),
          ...HSM_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const b = c.req.valid("json");
        const { tenant, keyId } = c.get("principal");
        const out = await signing().signPsbt(tenant, {
          keyId: b.keyId,
          psbt: b.psbt,
          apiKeyId: keyId,
          // The edge's idempotency key, namespaced per route, is the HSM's too.
          idempotencyKey: `sign-psbt:${c.req.header(IDEMPOTENCY_KEY_HEADER) ?? ""}`,
        });
        return c.json(out, 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/messages/sign",
        tags: ["signing"],
        summary: "Sign a message for an address of an HSM key (BIP-322 or legacy)",
        security: BEARER,
        middleware: [requireScope("sign"), required] as const,
        request: { body: jsonBody(SignMessageBody) },
        responses: {
          200: jsonResponse(
            z.object({ address: z.string(), signature: z.string(), format: z.string() }),
            "The signature",
          ),
          404: problem("No such key"),
          422: problem("The key does not control the address"),
          ...HSM_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const b = c.req.valid("json");
        const out = await signer().signMessage(c.get("principal").tenant, {
          keyId: b.keyId,
          path: b.path,
          address: b.address,
          message: b.message,
          format: b.format,
          idempotencyKey: `sign-message:${c.req.header(IDEMPOTENCY_KEY_HEADER) ?? ""}`,
        });
        return c.json({ address: out.address, signature: out.signature, format: b.format }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/messages/verify",
        tags: ["signing"],
        summary: "Verify a BIP-322 (simple, full) or legacy signmessage signature",
        description:
          "An undecodable or wrong signature is `valid: false`, not an error. Unprefixed signatures are read as BIP-322 simple.",
        security: BEARER,
        middleware: [requireScope("read")] as const,
        request: { body: jsonBody(VerifyBody) },
        responses: {
          200: jsonResponse(
            z.object({ valid: z.boolean(), format: z.string().nullable() }),
            "The verdict",
          ),
          422: problem("The address is invalid or for another network"),
          ...AUTH_PROBLEMS,
        },
      }),
      (c) => {
        const b = c.req.valid("json");
        const v = verifyMessage(b.address, b.message, b.signature, deps.network);
        return c.json({ valid: v.valid, format: v.format }, 200);
      },
    );
}
