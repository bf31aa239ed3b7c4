/**
 * Follows every broadcast transaction until it is final (the configured
 * confirmations), rejected, replaced or dropped. Runs on every instance;
 * records are claimed with `FOR UPDATE SKIP LOCKED`, so each is checked by one
 * instance per interval.
 *
 * @module
 */
import type { Logger } from "../obs/logger.ts";
import type { Db } from "../db/db.ts";
import { TxRepo } from "./tx_repo.ts";
import type { TxService } from "./tx_service.ts";

/** Settings of {@linkcode TxTracker}. */
export interface TxTrackerOptions {
  db: Db;
  service: TxService;
  logger: Logger;
  /** Pause between sweeps, and how long a claimed record is held. */
  intervalMs: number;
  /** Records checked per sweep. */
  batchSize?: number;
}

/** The polling loop. */
export class TxTracker {
  readonly #options: TxTrackerOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<number> | undefined;
  #stopped = false;

  /** @param options database, service, logger and pacing */
  constructor(options: TxTrackerOptions) {
    this.#options = options;
  }

  /** Start sweeping every `intervalMs`. */
  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  /**
   * Check every due record once.
   *
   * @returns how many records were checked
   */
  async sweep(): Promise<number> {
    const { db, service, logger, intervalMs } = this.#options;
    const due = await new TxRepo(db).claimDue(this.#options.batchSize ?? 100, intervalMs);
    for (const record of due) {
      try {
        await service.refresh(record);
      } catch (err) {
        logger.warn("transaction check failed; will retry", { txid: record.txid, error: err });
      }
    }
    return due.length;
  }

  /** Stop the loop and wait for a sweep in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => 0);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.sweep();
      this.#running.then(
        (checked) =>
          this.#schedule(
            checked === (this.#options.batchSize ?? 100) ? 0 : this.#options.intervalMs,
          ),
        (err) => {
          this.#options.logger.warn("transaction sweep failed", { error: err });
          this.#schedule(this.#options.intervalMs);
        },
      );
    }, delayMs);
  }
}
