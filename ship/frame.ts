/**
 * What every ship transport carries and how its two ends meet the journals, whatever the wire (tcp, kafka, redis):
 *
 *   WireFrame            one journal frame at the source's LSN, as shipped
 *   TruncationMark       a source journal's truncation event, for a mirror to reconcile
 *   HelloBranch          the source journal continues another one (a promoted mirror)
 *   ReceiverSessionInfo  what a receiving end learns when a session starts (tcp: the HELLO; brokers: the topic)
 *   FramesSource         the sending end's journal: identity, truncations, frames (mirror.ts journalSource)
 *   FramesSink           the receiving end's journal: onHello → durable LSN or refusal, onFrames (MirrorSink)
 *
 * Pure types and one helper; no I/O. The transports import this; it imports no transport.
 */

export interface WireFrame {
  readonly lsn: bigint;
  readonly endOfUnit: boolean;
  /** Decoded: shares memory with the decoder's buffers; do not modify. */
  readonly payload: Uint8Array;
}

export interface TruncationMark {
  readonly epoch: number;
  readonly toLsn: bigint;
}

/** The source journal continues journal `of` from LSN atLsn + 1 (journal/branch.ts). */
export interface HelloBranch {
  readonly of: string;
  readonly atLsn: bigint;
  /** The source journal's latest truncation epoch at its promotion: an adopting mirror reconciles from it. */
  readonly epoch: number;
}

export interface ReceiverSessionInfo {
  readonly source: string;
  /** The shipper's site, checked against its certificate (unchecked in plaintext mode). */
  readonly site: string;
  readonly journalId: string;
  /** The source journal's truncation events, for a mirror to reconcile (journal/mirror.ts). */
  readonly truncations: readonly TruncationMark[];
  /** Set when the source journal continues another one (a promoted mirror; journal/branch.ts). */
  readonly branch?: HelloBranch;
  readonly protocolVersion: number;
  /** "address:port" of the shipper. */
  readonly peer: string;
  /** Names in the client certificate (empty in plaintext mode). */
  readonly certificateNames: readonly string[];
}

/** The sending end's journal: spread into a shipper's options (tcp startShipper; the brokers use `frames`). */
export interface FramesSource {
  journalId: string;
  /** The source journal's branch (a promoted mirror's; journalSource sets it), sent in HELLO for mirrors to adopt. */
  branch?: HelloBranch;
  /**
   * The source journal's truncation events, read at every connection and sent in HELLO (default none). Wire a
   * journal with journalSource() (mirror.ts), which also reads frames only up to the journal's durable mark.
   */
  truncations?(): readonly TruncationMark[] | Promise<readonly TruncationMark[]>;
  /**
   * Frames from `fromLsn` on, consecutive; end the iteration when `signal` aborts. `session.truncationEpoch` is
   * the latest epoch of the truncations this connection's HELLO carried: a truncation after it must fail the
   * iteration (JournalReader `sinceEpoch`), so that the next HELLO tells the receiver.
   */
  frames(fromLsn: bigint, signal: AbortSignal, session: { truncationEpoch: number }): AsyncIterable<WireFrame>;
}

/** The receiving end's journal (MirrorSink): what a receiver of any transport hands sessions and frames to. */
export interface FramesSink {
  /**
   * A shipper introduced itself: return the LSN durably stored for this source (0n: nothing yet), or a reason to
   * refuse it (unknown source, journal identity changed…).
   */
  onHello(info: ReceiverSessionInfo): Promise<{ durableLsn: bigint } | { refuse: string }>;
  /**
   * Frames of one source, consecutive, continuing the durable LSN onHello returned (or the last call). Resolve
   * only once they are durable: the acknowledgement follows. Rejecting ends the session (the shipper resends).
   * Payloads may share memory with received buffers: copy before modifying.
   */
  onFrames(source: string, frames: readonly WireFrame[]): Promise<void>;
}

/** Highest LSN in `frames` that ends a unit, or null. */
export function lastUnitEnd(frames: readonly WireFrame[]): bigint | null {
  for (let i = frames.length - 1; i >= 0; i--) {
    const f = frames[i] as WireFrame;
    if (f.endOfUnit) return f.lsn;
  }
  return null;
}
