/**
 * `ln_channels`: the edge's mirror of the node's channels, kept by the
 * reconciler so that changes can be announced as events.
 *
 * @module
 */
import type { Queryable } from "../../db/db.ts";
import type { Channel, ChannelState } from "./backend.ts";

interface Row {
  channel_point: string;
  short_channel_id: string | null;
  peer_pubkey: string;
  state: ChannelState;
  capacity_sat: bigint;
  local_msat: bigint;
  remote_msat: bigint;
  private: boolean;
  initiator: boolean;
}

function toChannel(r: Row): Channel {
  return {
    channelPoint: r.channel_point,
    shortChannelId: r.short_channel_id,
    peerPubkey: r.peer_pubkey,
    state: r.state,
    capacitySat: BigInt(r.capacity_sat),
    localBalanceMsat: BigInt(r.local_msat),
    remoteBalanceMsat: BigInt(r.remote_msat),
    private: r.private,
    initiator: r.initiator,
  };
}

/** Data access for the channel mirror. */
export class ChannelRepo {
  readonly #db: Queryable;

  /** @param db the database or an open transaction */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /** Every mirrored channel. */
  async all(): Promise<Channel[]> {
    const rows = await this.#db.query<Row>("SELECT * FROM ln_channels ORDER BY channel_point");
    return rows.map(toChannel);
  }

  /** Insert or replace one channel's row. */
  async upsert(c: Channel): Promise<void> {
    await this.#db.query(
      `INSERT INTO ln_channels (channel_point, short_channel_id, peer_pubkey, state, capacity_sat,
         local_msat, remote_msat, private, initiator)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (channel_point) DO UPDATE SET short_channel_id = EXCLUDED.short_channel_id,
         state = EXCLUDED.state, capacity_sat = EXCLUDED.capacity_sat,
         local_msat = EXCLUDED.local_msat, remote_msat = EXCLUDED.remote_msat,
         private = EXCLUDED.private, updated_at = now()`,
      [
        c.channelPoint,
        c.shortChannelId,
        c.peerPubkey,
        c.state,
        c.capacitySat,
        c.localBalanceMsat,
        c.remoteBalanceMsat,
        c.private,
        c.initiator,
      ],
    );
  }
}
