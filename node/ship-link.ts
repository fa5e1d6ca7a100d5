/**
 * The primary's link to one standby as an explicit state machine: one state object (StandbyLink) instead of the
 * ship loop's loose variables, one transition function (`transition`), every change logged once with from, to
 * and why (`step`). The ship loop (ship-loop.ts) feeds it events; ship-state.ts writes what `linkFile` makes of
 * it for `tidemark status`. Pure apart from step's log line.
 *
 * States (ship/link-status.ts LinkState; what `tidemark status` shows as `link`):
 *
 *   connecting  a shipper is starting or (re)connecting (tcp: dial, TLS, HELLO/WELCOME; brokers: a new session)
 *   streaming   the transport streams and the standby (or its broker) acknowledges
 *   backoff     the transport lost its session and waits before the next one (its own retries, with backoff)
 *   failed      the shipper stopped with an error; the loop starts it again after a pause (2 s, or 30 s when the
 *               error is fatal: refused, certificate, journal gone)
 *   paused      `tidemark ship pause` (<journal>/ship/<standby>.paused): no shipper, the cursor stays
 *   done        the transport shipped everything there was (a frames source that ended; not the journal's)
 *   stopped     the process stops (terminal)
 *
 * Events: start (a shipper was started), transport (the running shipper's own state, read once a second),
 * fail (the shipper stopped with an error), pause, resume, stop. The cap (ship-cap.ts) is no state of the link:
 * a standby at the cap keeps streaming; the state file's `cap` says alarm or dropped.
 */
import type { Logger } from 'pino';
import { type LinkState, type LinkStatus, linkStatusRecord } from '../ship/link-status.ts';
import type { CapLevel } from './ship-cap.ts';
import type { DroppedMark, LinkFile } from './ship-state.ts';
import type { Running } from './ship-transports.ts';

export type LinkEvent =
  | { readonly kind: 'start' }
  | { readonly kind: 'transport'; readonly state: LinkState }
  | { readonly kind: 'fail'; readonly error: string; readonly fatal: boolean; readonly retryInMs: number }
  | { readonly kind: 'pause' }
  | { readonly kind: 'resume' }
  | { readonly kind: 'stop' };

export interface Transition {
  readonly from: LinkState;
  readonly to: LinkState;
  readonly why: string;
  /** How loud the log line is: error for a fatal failure, warn for a retriable one. */
  readonly level: 'info' | 'warn' | 'error';
}

/** Transport states the link takes over as its own; the transport's stopped is the link's pause or stop. */
const FROM_TRANSPORT: ReadonlySet<LinkState> = new Set(['connecting', 'streaming', 'backoff', 'failed', 'done']);

/**
 * The link's next state after `e` in state `from`, with the reason; null: the event changes nothing. A failure
 * in state failed is a transition too (failed → failed, with the new reason): each failure is logged.
 */
export function transition(from: LinkState, e: LinkEvent): Transition | null {
  const to = (state: LinkState, why: string): Transition | null =>
    state === from ? null : { from, to: state, why, level: 'info' };
  if (from === 'stopped') return null;
  switch (e.kind) {
    case 'stop':
      return to('stopped', 'the process stops');
    case 'pause':
      return to('paused', 'paused (tidemark ship resume ends it)');
    case 'resume':
      return from === 'paused' ? to('connecting', 'resumed') : null;
    case 'start':
      return from === 'paused' ? null : to('connecting', 'shipper started');
    case 'transport':
      if (from === 'paused' || !FROM_TRANSPORT.has(e.state)) return null;
      return to(e.state, `the transport reports ${e.state}`);
    case 'fail': {
      if (from === 'paused') return null;
      const secs = e.retryInMs / 1000;
      return e.fatal
        ? { from, to: 'failed', why: `shipping stopped: ${e.error}; trying again in ${secs} s`, level: 'error' }
        : { from, to: 'failed', why: `shipping not ready: ${e.error}; retrying in ${secs} s`, level: 'warn' };
    }
  }
}

/** Everything the ship loop knows about one standby's link. */
export interface StandbyLink {
  readonly standby: string;
  readonly transport: string;
  state: LinkState;
  /** The loop's own last error (a shipper that failed to start or stopped); the running shipper's comes first. */
  lastError: string | null;
  /** Highest LSN acknowledged, and the highest of them that ends a unit (what the cursor holds). */
  acked: { lsn: bigint; unitLsn: bigint };
  lastAckAt: Date | null;
  /** Source commit time of the last acknowledged unit, when this process shipped it. */
  ackedCommitTimeUs: bigint | null;
  /** Set while the standby is past the cap with at_cap drop-standby (its cursor removed). */
  dropped: DroppedMark | null;
  level: CapLevel;
  retainedBytes: number;
  running: Running | null;
}

export function newLink(standby: string, transport: string, ackedUnitLsn: bigint, dropped: DroppedMark | null) {
  const link: StandbyLink = {
    standby,
    transport,
    state: 'connecting',
    lastError: null,
    acked: { lsn: 0n, unitLsn: ackedUnitLsn },
    lastAckAt: null,
    ackedCommitTimeUs: null,
    dropped,
    level: 'ok',
    retainedBytes: 0,
    running: null,
  };
  return link;
}

/** Applies `e` to the link: a change of state is logged once, with from, to and why. */
export function step(link: StandbyLink, e: LinkEvent, log: Logger): Transition | null {
  const t = transition(link.state, e);
  if (t === null) return null;
  link.state = t.to;
  log[t.level]({ from: t.from, to: t.to, why: t.why }, `standby ${link.standby}: link ${t.from} → ${t.to}: ${t.why}`);
  return t;
}

/** An acknowledgement from the running shipper. */
export function noteAck(link: StandbyLink, a: { lsn: bigint; unitLsn: bigint; commitTimeUs: bigint | null }): void {
  if (a.unitLsn >= link.acked.unitLsn && a.commitTimeUs !== null) link.ackedCommitTimeUs = a.commitTimeUs;
  link.acked = { lsn: a.lsn, unitLsn: a.unitLsn > link.acked.unitLsn ? a.unitLsn : link.acked.unitLsn };
  link.lastAckAt = new Date();
}

/** The link's status (the one link-status shape): its own state and acknowledgements, the shipper's counters. */
export function linkStatus(link: StandbyLink): LinkStatus {
  const st = link.running?.status() ?? null;
  const { lsn, unitLsn } = link.acked;
  return {
    state: link.state,
    ackedLsn: lsn > unitLsn ? lsn : unitLsn,
    ackedUnitLsn: unitLsn,
    lastAckAt: link.lastAckAt,
    connects: st?.connects ?? 0,
    lastError: st?.lastError ?? link.lastError,
  };
}

/** The state file `tidemark status` reads (ship-state.ts writeLinkFile), as of `now`. */
export function linkFile(link: StandbyLink, now = new Date()): LinkFile {
  return {
    standby: link.standby,
    transport: link.transport,
    ...linkStatusRecord(linkStatus(link)),
    ackedCommitTimeUs: link.ackedCommitTimeUs === null ? null : String(link.ackedCommitTimeUs),
    retainedBytes: link.retainedBytes,
    cap: link.dropped ? 'dropped' : link.level === 'ok' ? 'ok' : 'alarm',
    pid: process.pid,
    updatedAt: now.toISOString(),
  };
}
