/**
 * The one shape of a ship link's status, whatever the transport and whichever end: what a shipper or receiver
 * reports (`status()`), what the primary's per-standby link (node/ship-link.ts) keeps and writes to the state file
 * that `tidemark status` reads (node/ship-state.ts), and what the metrics export. Pure; no I/O.
 *
 * A transport end reports connecting, streaming, backoff, done, stopped or failed (listening: a tcp receiver with
 * no shipper session); the primary's link adds paused (`tidemark ship pause`). `tidemark status` shows `down` when
 * no process has published a state for a while (not a state a link is ever in).
 */

export type LinkState = 'connecting' | 'streaming' | 'backoff' | 'paused' | 'failed' | 'done' | 'stopped' | 'listening';

export interface LinkStatus {
  readonly state: LinkState;
  /** Shipper: highest LSN the other end (receiver or broker) holds durably. Receiver: highest LSN made durable. */
  readonly ackedLsn: bigint;
  /** Highest acknowledged (or, at a receiver, durable) LSN that ends a unit. */
  readonly ackedUnitLsn: bigint;
  /** When ackedLsn last moved (a receiver: when frames were last made durable). */
  readonly lastAckAt: Date | null;
  /** Connections (tcp) or sessions (brokers) started. */
  readonly connects: number;
  readonly lastError: string | null;
}

/** A link whose metric `tidemark_ship_link_up` is 1. */
export function linkUp(s: Pick<LinkStatus, 'state'>): boolean {
  return s.state === 'streaming';
}

/** LinkStatus as JSON can hold it (LSNs as decimal strings, times as ISO 8601): the state file's link fields. */
export interface LinkStatusRecord {
  readonly state: LinkState;
  readonly ackedLsn: string;
  readonly ackedUnitLsn: string;
  readonly lastAckAt: string | null;
  readonly connects: number;
  readonly lastError: string | null;
}

export function linkStatusRecord(s: LinkStatus): LinkStatusRecord {
  return {
    state: s.state,
    ackedLsn: String(s.ackedLsn),
    ackedUnitLsn: String(s.ackedUnitLsn),
    lastAckAt: s.lastAckAt?.toISOString() ?? null,
    connects: s.connects,
    lastError: s.lastError,
  };
}
