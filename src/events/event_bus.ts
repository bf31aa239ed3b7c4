/**
 * The in-process event bus. Services publish domain events (a tracked
 * transaction confirmed, an invoice settled, …); subscribers (today: logs and
 * tests; later: WebSocket and webhook fan-out) receive them. Delivery is
 * synchronous and isolated: a throwing subscriber is logged and does not stop
 * the others or the publisher. Durable state lives in the database; this bus
 * only announces changes that were already committed.
 *
 * @module
 */
import type { Logger } from "../obs/logger.ts";

/** One domain event. */
export interface DomainEvent<T = unknown> {
  /** Dotted type, e.g. `tx.confirmed`. */
  type: string;
  /** Tenant the event belongs to; subscribers must not leak it to others. */
  tenant: string;
  /** When it happened. */
  at: Date;
  /** Event-specific data (JSON-safe: amounts as strings). */
  data: T;
}

/** A subscriber callback. */
export type EventHandler = (event: DomainEvent) => void;

/** Publish/subscribe within one process. */
export class EventBus {
  readonly #handlers = new Map<string, Set<EventHandler>>();
  readonly #logger: Logger | undefined;

  /**
   * An empty bus.
   *
   * @param logger where subscriber failures are reported
   */
  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  /**
   * Receive events whose type equals `pattern`, starts with `pattern` when it
   * ends in `.*`, or every event for `*`.
   *
   * @param pattern `tx.confirmed`, `tx.*` or `*`
   * @param handler callback
   * @returns a function that unsubscribes
   */
  subscribe(pattern: string, handler: EventHandler): () => void {
    let set = this.#handlers.get(pattern);
    if (set === undefined) this.#handlers.set(pattern, set = new Set());
    set.add(handler);
    return () => {
      set.delete(handler);
      if (set.size === 0) this.#handlers.delete(pattern);
    };
  }

  /**
   * Deliver `event` to every matching subscriber.
   *
   * @param event a committed domain event
   */
  publish(event: DomainEvent): void {
    for (const [pattern, handlers] of this.#handlers) {
      if (!matches(pattern, event.type)) continue;
      for (const handler of handlers) {
        try {
          handler(event);
        } catch (err) {
          this.#logger?.error("event subscriber failed", { type: event.type, error: err });
        }
      }
    }
  }
}

function matches(pattern: string, type: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*")) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}
