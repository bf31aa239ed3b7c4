/**
 * What the edge's payment path adds over the bare adapter, against a
 * zero-latency node (the LND test peer over the pinned TLS transport, in this
 * process): the baseline is `LndRestBackend.payInvoice` alone; the measured
 * path is `LightningService.pay` (decode and verify the invoice, the
 * tenant's lock and limits, the pending row before the node call, the
 * forward-only update after it) over the same adapter, on PGlite. Both pay a
 * fresh invoice per iteration; making it is outside the timed part's
 * difference (both do it).
 */
import { hex } from "@scure/base";
import { migrate, MIGRATIONS, openPgliteDb } from "../src/db/mod.ts";
import { EventBus } from "../src/events/mod.ts";
import { createLogger } from "../src/obs/logger.ts";
import { LightningService } from "../src/layer2/lightning/lightning_service.ts";
import { encodeBolt11 } from "../tests/_helpers/bolt11_encode.ts";
import { createLnNode, newPreimage } from "../tests/_peers/ln_node_state.ts";
import { lndHarness } from "../tests/_peers/lnd_peer.ts";

const logger = createLogger({ level: "error", sink: () => {} });
const node = createLnNode("regtest");
node.state.channels[0]!.localMsat = 10n ** 15n;
const h = await lndHarness(node);
const db = await openPgliteDb();
await migrate(db, MIGRATIONS);
const service = new LightningService({
  db,
  backend: h.backend,
  events: new EventBus(logger),
  logger,
  network: "regtest",
  defaultLimits: { maxPaymentSat: 10n ** 12n, maxDailySat: 10n ** 15n },
  maxPayTimeoutSeconds: 60,
  nodeDeadlineMs: 5_000,
});
const payeeKey = crypto.getRandomValues(new Uint8Array(32));

function invoice(): string {
  const { preimage, paymentHash } = newPreimage();
  node.state.outcomes.set(paymentHash, { outcome: "succeed", preimage, feeMsat: 1n });
  return encodeBolt11({
    network: "regtest",
    amountMsat: 1_000n,
    paymentHash,
    paymentSecret: hex.encode(crypto.getRandomValues(new Uint8Array(32))),
    description: "bench",
    nodeKey: payeeKey,
  });
}

Deno.bench({ name: "adapter payInvoice", group: "pay one invoice", baseline: true }, async () => {
  await h.backend.payInvoice({ bolt11: invoice(), maxFeeMsat: 100n, timeoutSeconds: 10 });
});

Deno.bench(
  { name: "LightningService.pay (ledger + checks)", group: "pay one invoice" },
  async () => {
    await service.pay("bench", { bolt11: invoice(), timeoutSeconds: 10 });
  },
);

globalThis.addEventListener("unload", () => {
  void h[Symbol.asyncDispose]();
  void db.close();
});
