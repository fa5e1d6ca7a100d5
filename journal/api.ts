/**
 * Public shape of the embedded journal (journal/). Implementation lives beside this file; index.ts exports it.
 *
 * The journal is an append-only sequence of frames in segment files. Each frame has an LSN (1, 2, 3 … bigint),
 * a payload (opaque bytes: an encoded record entry) and an end-of-unit flag. Units (source transactions) end
 * with a frame whose flag is set; on open, the single writer truncates a torn tail frame and every frame after
 * the last end-of-unit frame. Readers never see a unit the writer later truncated as complete: if a reader has
 * read past the truncation point it gets a retriable JournalTruncatedError and restarts from its cursor.
 */
import type { Logger } from 'pino';

export type FsyncPolicy = 'transaction' | 'group';

export interface JournalWriterOptions {
  dir: string;
  /** transaction: each end-of-unit append resolves after its own fdatasync; group: after a shared one. */
  fsync: FsyncPolicy;
  /** Group commit: at most one fdatasync per this many ms (a unit waits at most about this long plus the sync). */
  groupCommitMs: number;
  /** A segment is closed and a new one started before a frame would take it past this size. */
  segmentBytes: number;
  log?: Logger;
  /** Appended bytes not yet written to the OS above which append() waits (backpressure). Default 4 MiB. */
  maxPendingBytes?: number;
  /** Group commit: written-but-unsynced bytes at which a waiting unit is synced at once. Default 8 MiB. */
  groupSyncBytes?: number;
  /**
   * Open (or create) a mirror of the source journal with this id (identity.ts): frames are appended at the
   * source's LSNs with appendAt, and an existing journal that mirrors another source is refused.
   */
  mirrorOf?: string;
  /** LSN of the first frame when the directory holds no segment yet (a mirror joining late). Default 1n. */
  startLsn?: bigint;
}

export interface JournalFrame {
  lsn: bigint;
  payload: Uint8Array;
  endOfUnit: boolean;
  /** First LSN of the segment file holding the frame (the number in its name). Set by JournalReader. */
  segment?: bigint;
  /** Byte offset of the frame's header in that segment. Set by JournalReader; see readFrameAt (read-at.ts). */
  offset?: number;
}

export interface JournalReaderOptions {
  dir: string;
  /**
   * First LSN to deliver. 1n (or less) = from the oldest retained frame. A larger LSN that retention already
   * removed is an error (JOURNAL_GONE), as is one beyond what the journal holds once the reader has caught up
   * (JOURNAL_BEHIND: acknowledged frames are missing).
   */
  fromLsn: bigint;
  /**
   * Where frame fromLsn starts, when the caller knows it from an earlier read (the segment and end offset of the
   * frame before it: JournalFrame.segment, offset + HEADER_BYTES + payload length). The reader then starts
   * there instead of scanning the segment from its beginning. Ignored when that segment no longer exists.
   * With `lsn` (≤ fromLsn), it is where that earlier frame starts: the reader starts there and skips to fromLsn.
   */
  startAt?: { segment: bigint; offset: number; lsn?: bigint };
  /** true: wait for new frames at the end (tail -f); false: end at the current head. */
  follow: boolean;
  /** Poll interval while following, as a fallback behind fs.watch notifications. Default 20 ms. */
  pollMs?: number;
  /** Read size; memory use is about this plus the largest frame. Default 1 MiB. */
  chunkBytes?: number;
  /** Aborting ends the iteration (no error). */
  signal?: AbortSignal;
  log?: Logger;
  /**
   * Deliver only frames at or below the journal's durable mark (durable.ts: fsynced and ending a unit), holding
   * later ones back until the writer has synced them: what a shipper must use, so that it never sends a frame
   * the source could still lose or take back. Without follow, the iteration ends at the durable mark.
   */
  durableOnly?: boolean;
  /**
   * Truncation epoch (truncations.ts) the caller's view of the journal is based on, e.g. the latest one a shipper
   * sent in HELLO: any truncation recorded after it ends the iteration with JournalTruncatedError (retriable), at
   * once if it is already there, so that the caller starts again with the new events. Default: no such check
   * (only truncations that remove frames this reader delivered are reported).
   */
  sinceEpoch?: number;
}
