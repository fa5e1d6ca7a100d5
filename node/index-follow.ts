/**
 * Keeps the rollback index current while `tidemark run` runs: waits for the journal directory, opens the index
 * (with a structural check, once), and catches it up whenever the journal directory changes (fs.watch) or every
 * POLL_MS, until stopped. Retention's effect is applied every PRUNE_EVERY_MS.
 *
 * Failures never stop `run`: the index is derived data, and rewind/history commands catch it up themselves. A
 * retriable failure is logged as a warning, anything else as an error; both are retried with backoff, the index
 * being reopened first (which moves a damaged file aside and rebuilds it).
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { describeChain, isRetriable, sleep } from '../core/errors.ts';
import { INDEX_FILE, RollbackIndex } from '../rollback/index/index.ts';
import { backoff } from '../core/backoff.ts';
import { DirChange } from '../journal/index.ts';

const POLL_MS = 200;
/**
 * A burst of journal writes starts at most one catch-up per this many ms. Each catch-up pays for looking at the
 * journal (directory, segment and TRUNCATIONS stats, opens) and one SQLite transaction, whatever it indexes: under
 * sysbench's oltp_read_write (~700 tx/s) the follower took 2.9 s of CPU per 30 s at 50 ms, 1.8 s at 500 ms
 * (issue #15). The index is then up to half a second behind the journal; rewind and history commands catch it up
 * themselves before they read it.
 */
const MIN_GAP_MS = 500;
const PRUNE_EVERY_MS = 10 * 60_000;
const DIR_POLL_MS = 1000;

/**
 * SQLite page cache of the index inside `run` (the default is 64 MiB): `run` shares its memory budget with
 * capture and apply; indexing appends in order, so a small cache costs little.
 */
export const RUN_CACHE_MB = 16;

export interface FollowIndexOptions {
  journalDir: string;
  log: Logger;
  signal: AbortSignal;
  pollMs?: number;
  /** Called after each successful catch-up (tests). */
  onCaughtUp?: (lsn: bigint) => void;
}

export async function followIndex(o: FollowIndexOptions): Promise<void> {
  const { journalDir: dir, log, signal } = o;
  while (!signal.aborted && !existsSync(dir)) await sleep(DIR_POLL_MS, signal);
  if (signal.aborted) return;
  // Woken by any change but the index's own files; the first wait returns at once (a second pass picks up what was
  // written while the first ran, before the watch started).
  const waker = new DirChange({
    dir,
    pollMs: o.pollMs ?? POLL_MS,
    signal,
    wakesOn: (name) => !name.startsWith(INDEX_FILE),
    pending: true,
  });
  const delay = backoff(1000, 60_000);
  let index: RollbackIndex | null = null;
  let verified = false;
  let prunedAt = 0;
  try {
    while (!signal.aborted) {
      const started = performance.now();
      try {
        if (!index) {
          index = await RollbackIndex.open({ journalDir: dir, log, verify: !verified, cacheMb: RUN_CACHE_MB });
          verified = true;
          log.info({ indexedLsn: index.indexedLsn.toString() }, 'rollback index open');
        }
        const lsn = await index.catchUp({
          signal,
          onProgress: (p) =>
            log.info(
              { lsn: p.lsn.toString(), head: p.head.toString(), changes: p.changes },
              'rollback index: catching up',
            ),
        });
        if (Date.now() - prunedAt >= PRUNE_EVERY_MS) {
          prunedAt = Date.now();
          await index.prune();
        }
        delay.reset();
        o.onCaughtUp?.(lsn);
      } catch (err) {
        if (signal.aborted) break;
        const ms = delay.next();
        const bits = { err: describeChain(err), delayMs: ms };
        if (isRetriable(err)) log.warn(bits, 'rollback index: catch-up failed; retrying');
        else
          log.error(bits, 'rollback index: catch-up failed; retrying (rewind commands index the journal themselves)');
        index?.close();
        index = null;
        await sleep(ms, signal);
        continue;
      }
      const since = performance.now() - started;
      if (since < MIN_GAP_MS) await sleep(MIN_GAP_MS - since, signal);
      await waker.wait();
    }
  } finally {
    waker.close();
    index?.close();
  }
}
