/**
 * Finding the durable end of a journal and cutting off what lies beyond it.
 *
 * Rules (applied by the writer on open; inspectTail alone is read-only and also serves lastCommit):
 *   - A torn tail (see frame.ts) at the end of the last segment holding frames is removed.
 *   - Every frame after the last END_OF_UNIT frame (a unit cut by a crash) is removed, across segments if the
 *     unit spanned several: later segments are deleted, the segment holding the last END_OF_UNIT frame is
 *     truncated right after it. When that frame ends its segment, the next segment (named by the next LSN) is
 *     emptied and kept instead of deleted: a reader may already be waiting in it.
 *   - Damage with valid frames after it, LSNs out of sequence, a segment whose name does not continue the
 *     previous one, or a torn tail before a later segment that holds frames → CorruptionError naming the
 *     segment and byte offset; the journal is never opened past damage silently.
 * Only the segments from the end back to the one holding the last END_OF_UNIT frame are scanned (a journal of
 * many GB opens quickly); older segments are checked by readers as they read them.
 */
import { open, truncate, unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { fsyncDir } from '../core/durable-file.ts';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import { FrameScanner, type ScanEnd, type ScannedFrame } from './frame.ts';
import { listSegments, segmentFileName, segmentPath } from './segments.ts';
import { recordTruncation } from './truncations.ts';

export const SCAN_CHUNK_BYTES = 1 << 20;

export interface SegmentScan {
  readonly first: bigint;
  readonly frames: number;
  /** LSN of the last valid frame, or first - 1 when the segment holds none. */
  readonly lastLsn: bigint;
  /** Offset just past the last valid frame. */
  readonly validBytes: number;
  readonly fileBytes: number;
  readonly end: ScanEnd;
  /** The last END_OF_UNIT frame in the segment, if any. */
  readonly lastUnit: { lsn: bigint; endOffset: number; payload: Uint8Array; framesAfter: number } | null;
}

/** Streams one segment file through a FrameScanner in bounded-size chunks. */
export async function scanSegmentFile(
  dir: string,
  first: bigint,
  onFrame?: (f: ScannedFrame) => void,
  chunkBytes = SCAN_CHUNK_BYTES,
): Promise<SegmentScan> {
  const name = segmentFileName(first);
  const fh = await open(segmentPath(dir, first), 'r');
  try {
    const scanner = new FrameScanner({ segment: name, expectLsn: first });
    let pos = 0;
    let frames = 0;
    let lastLsn = first - 1n;
    let lastUnit: SegmentScan['lastUnit'] = null;
    const size = (await fh.stat()).size;
    // Reads up to the size seen at open: a writer appending meanwhile (lastCommit runs beside it) is not chased.
    while (pos < size) {
      const want = Math.min(chunkBytes, size - pos);
      const buf = new Uint8Array(want);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      for (const f of scanner.push(buf.subarray(0, bytesRead))) {
        frames++;
        lastLsn = f.lsn;
        if (f.endOfUnit)
          lastUnit = { lsn: f.lsn, endOffset: f.offset + f.size, payload: f.payload.slice(), framesAfter: 0 };
        else if (lastUnit) lastUnit.framesAfter++;
        onFrame?.(f);
      }
    }
    const end = scanner.end();
    return { first, frames, lastLsn, validBytes: end.offset, fileBytes: pos, end, lastUnit };
  } finally {
    await fh.close();
  }
}

export interface TailInfo {
  /** All segments found, ascending. */
  readonly segments: readonly bigint[];
  /** The segment the journal continues in after recovery (null: no segments at all). */
  readonly keepSegment: bigint | null;
  /** Its length after recovery. */
  readonly keepBytes: number;
  /** Last LSN that survives recovery (the last END_OF_UNIT frame), or keepSegment - 1 when there is none. */
  readonly headLsn: bigint;
  readonly lastUnitPayload: Uint8Array | null;
  /** Segments to delete (they hold only frames of an unfinished unit, or nothing). */
  readonly dropSegments: readonly bigint[];
  /** Complete frames to remove (an unfinished unit) and bytes to remove in total (including a torn tail). */
  readonly dropFrames: number;
  readonly dropBytes: number;
  /** Why a torn tail was found, when one was. */
  readonly torn: { segment: string; offset: number; bytes: number; reason: string } | null;
}

/** Read-only: where the durable end of the journal in `dir` is and what recovery would remove. */
export async function inspectTail(dir: string): Promise<TailInfo> {
  const segments = await listSegments(dir);
  if (segments.length === 0) {
    return {
      segments,
      keepSegment: null,
      keepBytes: 0,
      headLsn: 0n,
      lastUnitPayload: null,
      dropSegments: [],
      dropFrames: 0,
      dropBytes: 0,
      torn: null,
    };
  }
  let dropFrames = 0;
  let dropBytes = 0;
  const dropSegments: bigint[] = [];
  let torn: TailInfo['torn'] = null;
  let later: SegmentScan | null = null;
  for (let i = segments.length - 1; i >= 0; i--) {
    const first = segments[i] as bigint;
    const s = await scanSegmentFile(dir, first);
    const name = segmentFileName(first);
    if (later) {
      if (s.end.kind === 'torn' && later.frames > 0) {
        throw new CorruptionError(
          `journal segment ${name}: torn frame at byte offset ${s.end.offset} (${s.end.reason}) but the later ` +
            `segment ${segmentFileName(later.first)} holds frames`,
          { segment: name, offset: s.end.offset },
        );
      }
      if (s.end.kind === 'clean' && later.frames > 0 && later.first !== s.lastLsn + 1n) {
        throw new CorruptionError(
          `journal segment ${segmentFileName(later.first)} does not continue ${name} (which ends at LSN ${s.lastLsn})`,
          { segment: segmentFileName(later.first), offset: 0 },
        );
      }
    }
    if (s.end.kind === 'torn' && !torn) torn = { segment: name, ...s.end };
    if (s.lastUnit && later && s.end.kind === 'clean' && s.lastUnit.framesAfter === 0) {
      if (later.first === s.lastUnit.lsn + 1n) {
        // The unit ends exactly at this segment's end: continue in the next segment (emptied) rather than
        // delete it, so that a reader already waiting in that file sees the frames written next.
        dropSegments.pop();
        return {
          segments,
          keepSegment: later.first,
          keepBytes: 0,
          headLsn: s.lastUnit.lsn,
          lastUnitPayload: s.lastUnit.payload,
          dropSegments: dropSegments.reverse(),
          dropFrames,
          dropBytes,
          torn,
        };
      }
    }
    if (s.lastUnit || i === 0) {
      const keepBytes = s.lastUnit ? s.lastUnit.endOffset : 0;
      dropFrames += s.lastUnit ? s.lastUnit.framesAfter : s.frames;
      dropBytes += s.fileBytes - keepBytes;
      return {
        segments,
        keepSegment: first,
        keepBytes,
        headLsn: s.lastUnit ? s.lastUnit.lsn : first - 1n,
        lastUnitPayload: s.lastUnit ? s.lastUnit.payload : null,
        dropSegments: dropSegments.reverse(),
        dropFrames,
        dropBytes,
        torn,
      };
    }
    dropSegments.push(first);
    dropFrames += s.frames;
    dropBytes += s.fileBytes;
    later = s;
  }
  throw new Error('unreachable');
}

/**
 * Applies what inspectTail found. Order matters for a crash half-way: the truncation event is recorded first
 * (readers in other processes learn of it), later segments are deleted last-first, then the kept segment is
 * truncated; each step leaves a journal the next recovery handles.
 */
export async function applyRecovery(
  dir: string,
  t: TailInfo,
  log: Logger,
  why = 'of an unfinished unit',
): Promise<void> {
  if (t.keepSegment === null || (t.dropBytes === 0 && t.dropSegments.length === 0)) return;
  if (t.dropFrames > 0) await recordTruncation(dir, t.headLsn);
  for (const seg of [...t.dropSegments].reverse()) await unlink(segmentPath(dir, seg));
  if (t.dropSegments.length > 0) await fsyncDir(dir);
  const path = segmentPath(dir, t.keepSegment);
  await truncate(path, t.keepBytes);
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  log.warn(
    {
      dir,
      truncatedFrames: t.dropFrames,
      truncatedBytes: t.dropBytes,
      deletedSegments: t.dropSegments.map(segmentFileName),
      tornTail: t.torn,
      headLsn: t.headLsn.toString(),
    },
    `journal recovery: removed ${t.dropFrames} frame(s) ${why} and ${t.dropBytes} byte(s) in total`,
  );
}

/**
 * Read-only: what cutting the journal back to `toLsn` (keeping every frame ≤ toLsn) would remove, in the shape
 * applyRecovery applies. Used by JournalWriter.truncateTo (a mirror whose source truncated frames it holds).
 * `toLsn` must lie between the oldest retained segment's first LSN - 1 and the head.
 */
export async function planCut(dir: string, toLsn: bigint): Promise<TailInfo> {
  const segments = await listSegments(dir);
  const oldest = segments[0];
  if (oldest === undefined || toLsn < oldest - 1n) {
    throw new TidemarkError(
      `journal ${dir}: cannot cut back to LSN ${toLsn}: ` +
        (oldest === undefined ? 'it holds no segments' : `it starts at LSN ${oldest}`),
      { code: 'JOURNAL_GONE', retriable: false, context: { dir, toLsn } },
    );
  }
  // The segment that keeps the last frame ≤ toLsn; a segment starting right after toLsn is kept emptied instead.
  let keep = oldest;
  for (const s of segments) if (s <= toLsn + 1n) keep = s;
  let keepBytes = 0;
  let dropFrames = 0;
  let dropBytes = 0;
  let found = keep === toLsn + 1n;
  const cut = await scanSegmentFile(dir, keep, (f) => {
    if (f.lsn <= toLsn) keepBytes = f.offset + f.size;
    if (f.lsn === toLsn) found = true;
    if (f.lsn > toLsn) dropFrames++;
  });
  if (!found) {
    throw new TidemarkError(`journal ${dir}: cannot cut back to LSN ${toLsn}: it ends at LSN ${cut.lastLsn}`, {
      code: 'JOURNAL_CUT',
      retriable: false,
      context: { dir, toLsn },
    });
  }
  dropBytes += cut.fileBytes - keepBytes;
  const dropSegments = segments.filter((s) => s > keep);
  for (const s of dropSegments) {
    const scan = await scanSegmentFile(dir, s);
    dropFrames += scan.frames;
    dropBytes += scan.fileBytes;
  }
  return {
    segments,
    keepSegment: keep,
    keepBytes,
    headLsn: toLsn,
    lastUnitPayload: null,
    dropSegments,
    dropFrames,
    dropBytes,
    torn: null,
  };
}
