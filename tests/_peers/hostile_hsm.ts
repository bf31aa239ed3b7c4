/**
 * A hostile HSM: it speaks the HSM signer's API (routes/hsm/app.ts) over the
 * same mTLS transport, signs with a real BIP32 key, and then tampers with its
 * answer as told. The edge must refuse every tampered answer with a 502.
 */
import { Hono } from "hono";
import { HDKey } from "@scure/bip32";
import { base64 } from "@scure/base";
import { p2wpkh, Transaction } from "@scure/btc-signer";
import { serveMtls } from "../../routes/hsm/tls.ts";
import type { HsmEnv } from "../../routes/hsm/app.ts";
import { PSBT_TX_OPTS } from "../../src/bitcoin/psbt_parse.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { TEST_CLIENT_CN, type TestPki } from "../_helpers/pki.ts";
import { hsmKeyView } from "../_helpers/hsm_psbt.ts";

/** How the peer lies. */
export type Tamper =
  | "honest"
  | "invalid-signature"
  | "changed-output"
  | "extra-signed-input"
  | "unparsable";

/** A running hostile HSM. */
export interface HostileHsm extends AsyncDisposable {
  url: string;
  /** The key it holds (master). */
  root: HDKey;
  keyId: string;
  /** What the next answers do. */
  tamper: Tamper;
  /** Sign requests received. */
  signRequests: number;
}

/** Start the peer. `extraKey` signs the "extra" input (one the edge did not ask for). */
export async function startHostileHsm(pki: TestPki, extraKey: HDKey): Promise<HostileHsm> {
  const root = HDKey.fromMasterSeed(new Uint8Array(32).fill(42));
  const keyId = "hk_" + "ab".repeat(12);
  const state = { tamper: "honest" as Tamper, signRequests: 0 };
  const app = new Hono<HsmEnv>();
  app.get("/v1/keys/:id", (c) => c.json(hsmKeyView(root, keyId, "hostile")));
  app.post("/v1/sign/psbt", async (c) => {
    state.signRequests++;
    const req = await c.req.json() as { psbt: string };
    const tx = Transaction.fromPSBT(base64.decode(req.psbt), PSBT_TX_OPTS);
    tx.sign(root as unknown as Parameters<Transaction["sign"]>[0]);
    const signatures = [{ input: 0, pubkeyHex: "00", scheme: "ecdsa" }];
    switch (state.tamper) {
      case "invalid-signature": {
        const input = tx.getInput(0);
        const [pub, sig] = input.partialSig![0]!;
        const bad = sig.slice();
        bad[bad.length - 5]! ^= 1;
        const fresh = Transaction.fromPSBT(base64.decode(req.psbt), PSBT_TX_OPTS);
        fresh.updateInput(0, { partialSig: [[pub, bad]] });
        return c.json({ psbt: base64.encode(fresh.toPSBT()), signatures, amountSats: "0" });
      }
      case "changed-output": {
        // Redirect output 0 and sign that: valid signatures over another transaction.
        const orig = Transaction.fromPSBT(base64.decode(req.psbt), PSBT_TX_OPTS);
        const evil = new Transaction(PSBT_TX_OPTS);
        for (let i = 0; i < orig.inputsLength; i++) evil.addInput(orig.getInput(i));
        for (let i = 0; i < orig.outputsLength; i++) {
          const o = orig.getOutput(i);
          evil.addOutput(
            i === 0 ? { script: p2wpkh(extraKey.publicKey!).script, amount: o.amount! } : o,
          );
        }
        evil.sign(root as unknown as Parameters<Transaction["sign"]>[0]);
        return c.json({ psbt: base64.encode(evil.toPSBT()), signatures, amountSats: "0" });
      }
      case "extra-signed-input":
        tx.sign(extraKey as unknown as Parameters<Transaction["sign"]>[0]);
        break;
      case "unparsable":
        return c.json({ psbt: "cHNidP8BAAo=", signatures, amountSats: "0" });
      case "honest":
        break;
    }
    return c.json({ psbt: base64.encode(tx.toPSBT()), signatures, amountSats: "0" });
  });
  const server = await serveMtls(app, {
    host: "127.0.0.1",
    port: 0,
    certPem: pki.server.certPem,
    keyPem: pki.server.keyPem,
    clientCaPem: pki.ca.certPem,
    allowlist: new Map([[TEST_CLIENT_CN, "acme"]]),
    logger: createLogger({ sink: () => {} }),
  });
  return {
    url: `https://127.0.0.1:${server.port}`,
    root,
    keyId,
    get tamper() {
      return state.tamper;
    },
    set tamper(t: Tamper) {
      state.tamper = t;
    },
    get signRequests() {
      return state.signRequests;
    },
    [Symbol.asyncDispose]: () => server.close(0),
  };
}
