/** Request/response schemas shared by several route modules. */
import { z } from "@hono/zod-openapi";

/** A transaction id: 64 hex characters (display byte order). */
export const Txid = z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex characters")
  .transform((s) => s.toLowerCase())
  .openapi({ example: "e99225f637b39cac2049c6e9b483369272bec3a998b1b0e3aa9df00aa2cfc3c3" });

/** Satoshis as a decimal string (amounts are never JSON floats). */
export const SatsString = z.string().regex(/^\d+$/).openapi({
  description: "Amount in satoshis, as a decimal string",
  example: "150000",
});

/** `TxidParam` for path parameters. */
export const TxidParam = z.object({
  txid: Txid.openapi({ param: { name: "txid", in: "path" } }),
});
