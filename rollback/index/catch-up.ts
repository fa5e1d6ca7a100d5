/**
 * Brings the rollback index up to the journal head: reads frames (no follow) from the one after the last frame
 * indexed and hands them to the IndexBuilder, committing every BATCH_CHANGES changes and at the end.
 *
 * What can happen to the journal meanwhile, and what is done:
 *   - The writer truncates an unfinished unit (recovery): the reader throws JournalTruncatedError, or the
 *     TRUNCATIONS file shows it before a batch commits, or on the next call. The open batch is abandoned, the
 *     unit's rows already in the file are deleted, and indexing resumes after the last indexed commit.
 *   - Retention removed frames not indexed yet (the index was not kept current): reading starts again at the
 *     oldest retained frame; the first unit there is indexed only if none of its row changes are missing.
 *   - The journal ends before the last frame indexed (it was replaced, or lost acknowledged data): the index no
 *     longer describes it → IndexDamagedError, and the caller rebuilds it.
 *   - Another process indexed meanwhile: the batch notices at BEGIN (the stored progress moved) and this pass
 *     starts again from the new place.
 */
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { JournalTruncatedError } from '../../journal/index.ts';
import type { JournalFrame } from '../../journal/index.ts';
import { JournalReader } from '../../journal/index.ts';
import { inspectTail } from '../../journal/index.ts';
import { latestEpoch, readTruncations, truncatedSince, truncationsStamp } from '../../journal/index.ts';
import { BATCH_CHANGES, type IndexBuilder } from './builder.ts';
import { IndexDamagedError } from './schema.ts';
import { resumeAt, resumeLsn } from './state.ts';
import type { CatchUpOptions } from './types.ts';

/** Another process moved the index on while this pass read: start again from the stored progress. */
class Moved extends Error {}

const MAX_TRUNCATION_RETRIES = 20;
/** Frames are read ahead up to this many payload bytes, then indexed synchronously. */
const CHUNK_BYTES = 16 << 20;
const FRAME_OVERHEAD = 64;

export interface CatchUpContext {
  dir: string;
  builder: IndexBuilder;
  log: Logger;
  /** Changes per SQLite transaction (default BATCH_CHANGES). */
  batchChanges?: number;
}

export async function catchUpJournal(ctx: CatchUpContext, opts: CatchUpOptions = {}): Promise<bigint> {
  const b = ctx.builder;
  let fromOldest = false;
  let truncations = 0;
  for (;;) {
    try {
      return await pass(ctx, opts, fromOldest);
    } catch (err) {
      b.rollback();
      if (err instanceof Moved) continue;
      if (err instanceof JournalTruncatedError && ++truncations <= MAX_TRUNCATION_RETRIES) {
        ctx.log.debug({ err: err.message }, 'rollback index: the journal truncated an unfinished unit; again');
        await dropUnit(ctx);
        continue;
      }
      if (err instanceof TidemarkError && err.code === 'JOURNAL_GONE' && !fromOldest) {
        fromOldest = true;
        continue;
      }
      if (err instanceof TidemarkError && err.code === 'JOURNAL_BEHIND') {
        throw new IndexDamagedError(`rollback index: it is ahead of the journal (${err.message})`, err);
      }
      throw err;
    }
  }
}

/** Deletes the unfinished unit's rows from the file (its frames were truncated, or cannot be continued). */
async function dropUnit(ctx: CatchUpContext): Promise<void> {
  const b = ctx.builder;
  if (!b.state.unit && !b.state.scan) return;
  const epoch = latestEpoch(readTruncations(ctx.dir));
  if (!b.begin()) return;
  b.discardUnit();
  b.commit(epoch);
}

async function pass(ctx: CatchUpContext, opts: CatchUpOptions, fromOldest: boolean): Promise<bigint> {
  const { dir, builder: b, log } = ctx;
  const batch = ctx.batchChanges ?? BATCH_CHANGES;
  const stamp = truncationsStamp(dir);
  const events = readTruncations(dir);
  const epoch = latestEpoch(events);
  // An unfinished unit indexed by an earlier pass: were its frames truncated since?
  const scan = b.state.scan;
  if (scan) {
    const to = truncatedSince(events, b.state.epoch);
    if (to !== null && to < scan.lsn) await dropUnit(ctx);
  }
  const resume = resumeLsn(b.state);
  const reader = new JournalReader({
    dir,
    fromLsn: fromOldest ? 1n : resume + 1n,
    follow: false,
    ...(fromOldest ? {} : { startAt: resumeAt(b.state) }),
    log,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  let first = true;
  let done = 0;
  let lastReport = performance.now();
  let head: bigint | null = null;

  /**
   * Indexes buffered frames in one go, without awaiting: the write lock is held only while this runs, so a
   * catch-up never waits on another one in the same thread, and other processes wait for at most one batch.
   */
  const apply = (frames: JournalFrame[]) => {
    if (!b.begin()) throw new Moved();
    for (const f of frames) {
      if (first) {
        first = false;
        if (f.lsn !== resume + 1n) {
          const bits = { from: (resume + 1n).toString(), to: (f.lsn - 1n).toString() };
          if (resume === 0n) log.info(bits, 'rollback index: starting at the oldest frame retention kept');
          else log.warn(bits, 'rollback index: retention removed frames before they were indexed');
          b.discardUnit();
          b.afterGap = true;
        }
      }
      b.addFrame(f);
      if (b.changes >= batch) {
        done += b.changes;
        b.commit(epoch);
        if (!b.begin()) throw new Moved();
      }
    }
    done += b.changes;
    b.commit(epoch);
  };

  const pending: JournalFrame[] = [];
  let bytes = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    // Frames of this pass must not have been truncated (the reader checks too; this covers the earlier pieces
    // of an unfinished unit, read by an earlier pass).
    if (truncationsStamp(dir) !== stamp) {
      const to = truncatedSince(readTruncations(dir), epoch);
      const upTo = (pending.at(-1) as JournalFrame).lsn;
      if (to !== null && to < upTo) {
        throw new JournalTruncatedError(`journal ${dir}: truncated to LSN ${to} while indexing up to ${upTo}`, {
          dir,
          deliveredLsn: upTo,
          truncatedToLsn: to,
        });
      }
    }
    apply(pending);
    const last = (pending.at(-1) as JournalFrame).lsn;
    pending.length = 0;
    bytes = 0;
    if (opts.onProgress && performance.now() - lastReport >= 1000) {
      head ??= (await inspectTail(dir)).headLsn;
      if (head < last) head = last;
      opts.onProgress({ lsn: last, head, changes: done });
      lastReport = performance.now();
    }
  };
  for await (const f of reader) {
    if (f.lsn <= resume) continue;
    pending.push(f);
    bytes += f.payload.length + FRAME_OVERHEAD;
    if (bytes >= CHUNK_BYTES) await flush();
  }
  await flush();
  return b.state.indexedLsn;
}
