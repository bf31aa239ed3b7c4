/**
 * Broadcasting and tracking signed transactions. A broadcast is idempotent by
 * txid per tenant and never reported "failed" while it may have gone out: the
 * row is written before the backend is called, and when the backend's answer is
 * lost the txid is looked up before anything is retried.
 *
 * @module
 */
import { hex } from "@scure/base";
import { Transaction } from "@scure/btc-signer";
import type { ChainBackend, TxInfo } from "../chain/backend.ts";
import type { Db } from "../db/db.ts";
import {
  AppError,
  ConflictError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from "../errors/mod.ts";
import type { EventBus } from "../events/event_bus.ts";
import type { Logger } from "../obs/logger.ts";
import { type TxRecord, TxRepo, type TxState, type TxUpdate } from "./tx_repo.ts";

/** Largest raw transaction accepted for broadcast (standardness: 400,000 weight units). */
export const MAX_RAW_TX_BYTES = 400_000;

/** How a broadcast request ended. */
export interface BroadcastOutcome {
  record: TxRecord;
  /** False when the tenant had already submitted this txid (nothing was sent again). */
  created: boolean;
}

/** Dependencies of {@linkcode TxService}. */
export interface TxServiceOptions {
  db: Db;
  /** `null` when no chain backend is configured. */
  backend: ChainBackend | null;
  events: EventBus;
  logger: Logger;
  /** Confirmations after which a transaction is final. */
  confirmations: number;
  /** Delay before the tracker first re-checks a transaction. */
  recheckMs: number;
}

/** Broadcast, look up and follow transactions. */
export class TxService {
  readonly #db: Db;
  readonly #backend: ChainBackend | null;
  readonly #events: EventBus;
  readonly #logger: Logger;
  readonly #confirmations: number;
  readonly #recheckMs: number;

  /** @param options database, backend, events, logger and tracking settings */
  constructor(options: TxServiceOptions) {
    this.#db = options.db;
    this.#backend = options.backend;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#confirmations = options.confirmations;
    this.#recheckMs = options.recheckMs;
  }

  /**
   * Broadcast a signed transaction for `tenant`, once.
   *
   * @param tenant owner of the record
   * @param rawTxHex the signed transaction, hex
   * @returns the tracked record; `created` false when it was submitted before
   * @throws ValidationError 422 when malformed or refused by the network
   * @throws UnavailableError 503 when the backend could not be reached (nothing was sent)
   * @example
   * ```ts
   * const { record } = await txService.broadcast("acme", "0200000001…");
   * ```
   */
  async broadcast(tenant: string, rawTxHex: string): Promise<BroadcastOutcome> {
    const backend = this.#requireBackend();
    const parsed = parseRawTransaction(rawTxHex);
    const repo = new TxRepo(this.#db);
    const inserted = await repo.insertBroadcasting(
      { tenant, ...parsed, feeSats: null },
      this.#recheckMs,
    );
    let refused: TxRecord | null = null;
    if (inserted === null) {
      const existing = await repo.get(tenant, parsed.txid);
      if (existing === null) throw new NotFoundError("Transaction not found");
      // A refused transaction may be valid now (its parent confirmed): try again.
      if (existing.state !== "rejected") return notInFlight(existing);
      const retried = await this.#transition(existing, ["rejected"], { state: "broadcasting" });
      if (retried === null) return notInFlight(await this.#require(tenant, parsed.txid));
      refused = existing;
    } else {
      await repo.recordEvent(inserted);
    }

    try {
      await backend.broadcast(parsed.rawHex);
    } catch (err) {
      return {
        record: await this.#afterFailedBroadcast(tenant, parsed.txid, err, refused),
        created: true,
      };
    }
    const record = await this.#transition(
      { tenant, txid: parsed.txid },
      ["broadcasting"],
      { state: "mempool", misses: 0 },
    );
    return { record: record ?? await this.#require(tenant, parsed.txid), created: true };
  }

  /**
   * The tenant's tracked record of `txid`.
   *
   * @throws NotFoundError when this tenant never broadcast it
   */
  async get(tenant: string, txid: string): Promise<TxRecord> {
    return await this.#require(tenant, txid);
  }

  /** State history of a tracked transaction, oldest first. */
  async history(tenant: string, txid: string): ReturnType<TxRepo["history"]> {
    return await new TxRepo(this.#db).history(tenant, txid);
  }

  /**
   * Re-check one due record against the backend (the tracker's step).
   *
   * @param record a claimed record
   */
  async refresh(record: TxRecord): Promise<void> {
    const backend = this.#requireBackend();
    const found = await backend.getTransaction(record.txid);
    if (found !== null) {
      await this.#applyStatus(record, found);
      return;
    }
    // The backend does not know it. For anything not yet seen (or gone from the
    // mempool) sending the identical bytes again is safe: the network dedupes
    // by txid, and we only get here after the lookup above.
    try {
      await backend.broadcast(record.rawHex);
      await this.#transition(record, [record.state], { state: "mempool", misses: 0 });
    } catch (err) {
      if (err instanceof ValidationError) {
        const reason = err.message;
        const conflict = /missing|spent|conflict|replace/i.test(reason);
        const seenBefore = record.state === "mempool" || record.state === "confirmed";
        await this.#transition(record, [record.state], {
          state: seenBefore ? (conflict ? "replaced" : "dropped") : "rejected",
          rejectReason: reason,
        });
        return;
      }
      await this.#transition(record, [record.state], {
        state: record.state === "broadcasting" ? "unknown" : record.state,
        misses: record.misses + 1,
      });
      throw err;
    }
  }

  async #applyStatus(record: TxRecord, info: TxInfo): Promise<void> {
    if (info.status.state === "unconfirmed") {
      if (record.state === "mempool" && record.misses === 0) return;
      await this.#transition(record, [record.state], {
        state: "mempool",
        confirmations: 0,
        blockHeight: null,
        blockHash: null,
        misses: 0,
      });
      return;
    }
    const { blockHeight, blockHash, confirmations } = info.status;
    const state: TxState = confirmations >= this.#confirmations ? "final" : "confirmed";
    if (
      record.state === state && record.confirmations === confirmations &&
      record.blockHash === blockHash
    ) return;
    await this.#transition(record, [record.state], {
      state,
      confirmations,
      blockHeight,
      blockHash,
      misses: 0,
    });
  }

  /** @param refused the earlier rejected record when this was a retry of it */
  async #afterFailedBroadcast(
    tenant: string,
    txid: string,
    err: unknown,
    refused: TxRecord | null,
  ): Promise<TxRecord> {
    const repo = new TxRepo(this.#db);
    if (err instanceof ValidationError) {
      const record = await this.#transition({ tenant, txid }, ["broadcasting"], {
        state: "rejected",
        rejectReason: err.message,
      });
      throw new ValidationError(err.message, {
        status: 422,
        extensions: { txid, state: record?.state ?? "rejected" },
        cause: err,
      });
    }
    if (err instanceof UnavailableError) {
      // Never left this process: keep nothing new, and put a retried refusal
      // back as it was rather than losing its record and history.
      if (refused === null) await repo.deleteBroadcasting(tenant, txid);
      else {
        await this.#transition(refused, ["broadcasting"], {
          state: "rejected",
          rejectReason: refused.rejectReason,
        });
      }
      throw err;
    }
    // Outcome unknown (timeout, broken connection, 5xx): it may be out there.
    this.#logger.warn("broadcast outcome unknown; looking the txid up", {
      txid,
      error: err instanceof AppError ? err.code : String(err),
    });
    let found: TxInfo | null = null;
    try {
      found = await this.#requireBackend().getTransaction(txid);
    } catch {
      // Still unknown; the tracker retries the lookup.
    }
    const current = await this.#require(tenant, txid);
    if (found !== null) {
      await this.#transition(current, ["broadcasting"], { state: "mempool", misses: 0 });
      const record = await this.#require(tenant, txid);
      if (found.status.state === "confirmed") await this.#applyStatus(record, found);
      return await this.#require(tenant, txid);
    }
    return await this.#transition(current, ["broadcasting"], { state: "unknown" }) ?? current;
  }

  async #transition(
    key: { tenant: string; txid: string },
    from: readonly TxState[],
    update: TxUpdate,
  ): Promise<TxRecord | null> {
    const record = await this.#db.transaction(async (tx) => {
      const repo = new TxRepo(tx);
      const updated = await repo.transition(key, from, update, this.#recheckMs);
      if (updated !== null) await repo.recordEvent(updated);
      return updated;
    });
    if (record !== null) {
      this.#events.publish({
        type: `tx.${record.state}`,
        tenant: record.tenant,
        at: record.updatedAt,
        data: {
          txid: record.txid,
          state: record.state,
          confirmations: record.confirmations,
          blockHeight: record.blockHeight,
          blockHash: record.blockHash,
          rejectReason: record.rejectReason,
        },
      });
    }
    return record;
  }

  async #require(tenant: string, txid: string): Promise<TxRecord> {
    const record = await new TxRepo(this.#db).get(tenant, txid);
    if (record === null) throw new NotFoundError(`Transaction not tracked: "${txid}"`);
    return record;
  }

  #requireBackend(): ChainBackend {
    if (this.#backend === null) {
      throw new UnavailableError("No chain backend is configured: set CHAIN_BACKEND", {
        extensions: { reason: "chain-backend-not-configured" },
      });
    }
    return this.#backend;
  }
}

/**
 * Parse a raw transaction strictly; every failure is a 422 that says why.
 *
 * @param rawTxHex hex
 */
export function parseRawTransaction(
  rawTxHex: string,
): { txid: string; rawHex: string; vsize: number } {
  if (typeof rawTxHex !== "string") throw new TypeError("rawTxHex must be a string");
  const text = rawTxHex.trim().toLowerCase();
  if (!/^([0-9a-f]{2})+$/.test(text)) {
    throw new ValidationError("Invalid transaction: expected hex", { status: 422 });
  }
  if (text.length / 2 > MAX_RAW_TX_BYTES) {
    throw new ValidationError(`Invalid transaction: larger than ${MAX_RAW_TX_BYTES} bytes`, {
      status: 422,
    });
  }
  let tx: Transaction;
  try {
    tx = Transaction.fromRaw(hex.decode(text), {
      allowUnknownOutputs: true,
      allowUnknownInputs: true,
    });
  } catch (err) {
    throw new ValidationError(
      `Invalid transaction: ${err instanceof Error ? err.message.slice(0, 200) : "unparsable"}`,
      { status: 422 },
    );
  }
  if (!tx.isFinal) {
    throw new ValidationError("Invalid transaction: not fully signed", { status: 422 });
  }
  return { txid: tx.id, rawHex: text, vsize: tx.vsize };
}

/**
 * The answer to a resubmission: the tracked record, unless a broadcast of it
 * is still in flight. That one may yet fail without reaching the network and
 * be forgotten, so the caller is told to come back rather than handed a
 * record that might vanish.
 */
function notInFlight(record: TxRecord): BroadcastOutcome {
  if (record.state === "broadcasting") {
    throw new ConflictError("A broadcast of this transaction is in progress; retry shortly", {
      code: "broadcast-in-progress",
      headers: { "Retry-After": "1" },
      extensions: { txid: record.txid },
    });
  }
  return { record, created: false };
}
