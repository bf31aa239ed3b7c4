/**
 * Keeps the Lightning ledger in line with the node while the edge runs: the
 * node's invoice stream (or long-poll) applied as it comes, and a full
 * reconciliation at start and on an interval for whatever a stream missed
 * (a restart, a disconnect, another instance's crash).
 *
 * @module
 */
import type { Logger } from "../../obs/logger.ts";
import type { LightningBackend } from "./backend.ts";
import type { LightningService } from "./lightning_service.ts";

/** Options of {@linkcode startLightningSync}. */
export interface LightningSyncOptions {
  service: LightningService;
  backend: LightningBackend;
  intervalMs: number;
  logger: Logger;
}

/** A running sync; `stop` ends the stream and the timer and waits for both. */
export interface LightningSync {
  /** Run one reconciliation now (the interval also does). */
  reconcileNow(): Promise<void>;
  stop(): Promise<void>;
}

/** Start watching invoices and reconciling every `intervalMs` (and once right away). */
export function startLightningSync(options: LightningSyncOptions): LightningSync {
  const { service, backend, logger } = options;
  const abort = new AbortController();
  let running: Promise<void> | null = null;
  const reconcileNow = () => {
    // One at a time: an interval tick during a slow pass joins it.
    running ??= service.reconcile().then(
      (changed) => {
        if (changed.payments + changed.invoices + changed.channels > 0) {
          logger.info("lightning reconciled", changed);
        }
      },
      (err) => logger.warn("lightning reconciliation failed", { error: describe(err) }),
    ).finally(() => {
      running = null;
    });
    return running;
  };
  const watching = (async () => {
    try {
      for await (const invoice of backend.watchInvoices(abort.signal)) {
        try {
          await service.applyInvoice(invoice);
        } catch (err) {
          logger.warn("invoice update not applied", { error: describe(err) });
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) logger.error("invoice watch ended", { error: describe(err) });
    }
  })();
  void reconcileNow();
  const timer = setInterval(() => void reconcileNow(), options.intervalMs);
  return {
    reconcileNow,
    async stop() {
      clearInterval(timer);
      abort.abort();
      await watching;
      await running;
    },
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
