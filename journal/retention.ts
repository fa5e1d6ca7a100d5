/**
 * Retention: deletes whole old segments, oldest first, and stops at the first segment that must stay.
 *
 * A segment may go only when ALL of these hold:
 *   - it is not the last segment (the last one holds the head; it is never deleted);
 *   - at least one cursor is registered (a journal without cursors deletes nothing), and every frame in the
 *     segment is below the lowest acknowledged LSN of all cursors: its last LSN, which is the next segment's first
 *     LSN minus one, is < min(cursor.lsn);
 *   - it is older than keepHours, judged by the segment file's mtime: segments are append-only and never
 *     written again after rotation, so the mtime is the time its last frame was written.
 * Deleting oldest-first and stopping at the first keeper never leaves a hole in the LSN sequence.
 * Safe to run from any process, beside the writer and readers (a reader holding a deleted segment open keeps
 * reading it).
 */
import { stat, unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { fsyncDir } from '../core/durable-file.ts';
import { silentLogger } from '../core/log.ts';
import { type CursorInfo, CursorStore } from './cursors.ts';
import { listSegments, segmentFileName, segmentPath } from './segments.ts';

export interface RetentionOptions {
  dir: string;
  keepHours: number;
  /** Current time in ms since the epoch (tests). */
  now?: number;
  log?: Logger;
}

export interface RetentionResult {
  /** File names of the deleted segments. */
  readonly deleted: string[];
  /** Lowest acknowledged LSN over all cursors, or null when there are none. */
  readonly minAckedLsn: bigint | null;
  /** Why deletion stopped where it did. */
  readonly stoppedBy: 'no-cursors' | 'head' | 'unacknowledged' | 'too-recent';
}

export async function applyRetention(opts: RetentionOptions): Promise<RetentionResult> {
  const log = opts.log ?? silentLogger;
  const now = opts.now ?? Date.now();
  const cursors = await new CursorStore(opts.dir).list();
  if (cursors.length === 0) return { deleted: [], minAckedLsn: null, stoppedBy: 'no-cursors' };
  let minAcked = (cursors[0] as CursorInfo).lsn;
  for (const c of cursors) if (c.lsn < minAcked) minAcked = c.lsn;
  const segs = await listSegments(opts.dir);
  const deleted: string[] = [];
  let stoppedBy: RetentionResult['stoppedBy'] = 'head';
  for (let i = 0; i + 1 < segs.length; i++) {
    const first = segs[i] as bigint;
    const lastLsn = (segs[i + 1] as bigint) - 1n;
    if (!(lastLsn < minAcked)) {
      stoppedBy = 'unacknowledged';
      break;
    }
    const path = segmentPath(opts.dir, first);
    const mtime = (await stat(path)).mtimeMs;
    if (now - mtime < opts.keepHours * 3_600_000) {
      stoppedBy = 'too-recent';
      break;
    }
    await unlink(path);
    deleted.push(segmentFileName(first));
  }
  if (deleted.length > 0) {
    await fsyncDir(opts.dir);
    log.info({ dir: opts.dir, deleted, minAckedLsn: minAcked.toString() }, 'journal retention deleted segments');
  }
  return { deleted, minAckedLsn: minAcked, stoppedBy };
}
