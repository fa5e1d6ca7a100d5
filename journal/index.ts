/** The embedded durable journal: public API. See api.ts for the model. */
export type { FsyncPolicy, JournalFrame, JournalReaderOptions, JournalWriterOptions } from './api.ts';
export {
  adoptBranch,
  type BranchDecision,
  type DemoteOptions,
  demoteToMirror,
  type PromoteOptions,
  type PromoteResult,
  promoteMirror,
} from './branch.ts';
export { type CursorInfo, CursorStore, type FrameAt } from './cursors.ts';
export {
  commitAtLsn,
  commitOfTail,
  decodeFrame,
  frameAtLsn,
  type JournalEntry,
  JournalSink,
  lastCommit,
  readEntries,
} from './entries.ts';
export { DirChange, type DirChangeOptions } from './dir-change.ts';
export { DURABLE_FILE, DurableMarkReader, readDurableLsn } from './durable.ts';
export { JournalLockedError, JournalTruncatedError } from './errors.ts';
export {
  checkLockFree,
  DirLock,
  type LockOptions,
  LOCK_FILE,
  type PidState,
  pidState,
  readLockPid,
} from './lock.ts';
export {
  encodeFrame,
  FLAG_END_OF_UNIT,
  FrameScanner,
  HEADER_BYTES,
  MAX_PAYLOAD,
  type ScanEnd,
  type ScannedFrame,
} from './frame.ts';
export {
  IDENTITY_FILE,
  type JournalBranch,
  type JournalIdentity,
  JournalIdentityError,
  journalIdentity,
  readIdentity,
} from './identity.ts';
export { type ReconcileResult, reconcileTruncations, type SourceTruncation } from './mirror.ts';
export { journalDirOf, mirrorDir } from './mirror-dir.ts';
export { frameOnDisk, readEntryAt, readEntryBytesAt, readFrameAt, SegmentFiles } from './read-at.ts';
export { JournalReader } from './reader.ts';
export { inspectTail, type TailInfo } from './recovery.ts';
export { applyRetention, type RetentionOptions, type RetentionResult } from './retention.ts';
export { listSegments, parseSegmentFileName, segmentFileName } from './segments.ts';
export { JournalWriter } from './writer.ts';
export { segmentPath } from './segments.ts';
export { latestEpoch, readTruncations, truncatedSince, truncationsStamp } from './truncations.ts';
