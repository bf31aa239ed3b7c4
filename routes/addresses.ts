/** `GET /v1/addresses/{address}`: is an address valid for the configured network, and what is it? */
import { createRoute, z } from "@hono/zod-openapi";
import { AUTH_PROBLEMS, BEARER, createRouter, jsonResponse } from "./_openapi.ts";
import { requireScope } from "./_middleware/auth.ts";
import { describeAddress } from "../src/bitcoin/address.ts";
import { BITCOIN_NETWORKS, type BitcoinNetwork } from "../src/bitcoin/network.ts";

const AddressInfo = z.object({
  address: z.string(),
  valid: z.boolean(),
  network: z.enum(BITCOIN_NETWORKS).openapi({ description: "The network the edge serves" }),
  type: z.enum(["p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "p2a", "witness-unknown"]).optional(),
  scriptPubKey: z.string().optional().openapi({
    description: "Hex scriptPubKey paying the address",
  }),
  witnessVersion: z.number().int().optional(),
  reason: z.string().optional().openapi({ description: "Why it is not valid here" }),
  validOn: z.array(z.enum(BITCOIN_NETWORKS)).optional().openapi({
    description: "Networks the address is valid on instead",
  }),
}).openapi("AddressInfo");

const AddressParam = z.object({
  address: z.string().min(1).max(120).openapi({ param: { name: "address", in: "path" } }),
});

/** Address validation for `network`. */
export function addressRoutes(deps: { network: BitcoinNetwork }) {
  return createRouter().openapi(
    createRoute({
      method: "get",
      path: "/v1/addresses/{address}",
      tags: ["addresses"],
      summary: "Validate an address for the configured network: type and scriptPubKey",
      description:
        "An invalid or other-network address is a 200 with `valid: false` and the reason.",
      security: BEARER,
      middleware: [requireScope("read")] as const,
      request: { params: AddressParam },
      responses: { 200: jsonResponse(AddressInfo, "What the address is"), ...AUTH_PROBLEMS },
    }),
    (c) => {
      const { address } = c.req.valid("param");
      const info = describeAddress(address, deps.network);
      if (!info.valid) {
        return c.json({
          address,
          valid: false,
          network: deps.network,
          reason: info.reason,
          ...(info.networks === undefined ? {} : { validOn: info.networks }),
        }, 200);
      }
      return c.json({
        address,
        valid: true,
        network: deps.network,
        type: info.type,
        scriptPubKey: info.scriptPubKeyHex,
        ...(info.witnessVersion === undefined ? {} : { witnessVersion: info.witnessVersion }),
      }, 200);
    },
  );
}
