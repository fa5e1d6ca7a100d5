/**
 * Public shape of the embedded journal (ship/journal). Implementation lives beside this file.
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
  fsync: FsyncPolicy;
  /** Upper bound on how long a unit waits for its fsync under group commit. */
  groupCommitMs: number;
  segmentBytes: number;
  log?: Logger;
}

export interface JournalFrame {
  lsn: bigint;
  payload: Uint8Array;
  endOfUnit: boolean;
}

export interface JournalReaderOptions {
  dir: string;
  /** First LSN to deliver (1n = from the beginning of what is retained). */
  fromLsn: bigint;
  /** true: wait for new frames at the end (tail -f); false: end at the current head. */
  follow: boolean;
  /** Poll interval while following when no file-change notification arrives. */
  pollMs?: number;
  signal?: AbortSignal;
  log?: Logger;
}
