/**
 * Mirror journals: a standby's local copy of a source journal, holding the source's frames at the source's LSNs
 * (JournalWriter opened with `mirrorOf`, frames added with appendAt, made durable with sync). This file holds
 * the mirror's side of the source's truncations.
 *
 * A source journal takes frames back only above its durable mark (recovery cuts an unfinished unit), and a
 * shipper reading with `durableOnly` never sends those. In case one was sent anyway (a shipper without it, a bug),
 * the source's truncation events travel in HELLO and the mirror reconciles them before it reports its durable
 * LSN: an event the mirror has not seen yet, with toLsn below the mirror's head, means the mirror may hold frames
 * the source removed and later rewrote differently. The mirror then cuts back to toLsn (recording its own
 * truncation event, so that its readers, the applier, start again) and receives the source's frames from there.
 * The latest source epoch reconciled is kept in the mirror's JOURNAL file (identity.ts), written after the cut.
 */
import type { Logger } from 'pino';
import { silentLogger } from '../core/log.ts';
import { TidemarkError } from '../core/errors.ts';
import { latestEpoch } from './truncations.ts';
import type { JournalWriter } from './writer.ts';

export interface SourceTruncation {
  readonly epoch: number;
  readonly toLsn: bigint;
}

export interface ReconcileResult {
  /** The LSN the mirror was cut back to, or null when it kept everything. */
  readonly cutTo: bigint | null;
  /** The source epoch now recorded as reconciled. */
  readonly sourceEpoch: number;
}

/**
 * Brings a mirror in line with its source's truncation events (see the module comment). Call it with the
 * events of each new session, before reporting the mirror's durable LSN and before appending any frame of it.
 */
export async function reconcileTruncations(
  w: JournalWriter,
  events: readonly SourceTruncation[],
  log: Logger = silentLogger,
): Promise<ReconcileResult> {
  const m = w.identity.mirror;
  if (!m) {
    throw new TidemarkError(`journal ${w.dir} is not a mirror: it has no source truncations to reconcile`, {
      code: 'JOURNAL_MIRROR',
    });
  }
  const latest = latestEpoch(events);
  if (latest <= m.sourceEpoch) return { cutTo: null, sourceEpoch: m.sourceEpoch };
  const newer = events.filter((e) => e.epoch > m.sourceEpoch);
  let cutTo: bigint | null = null;
  if (!w.isEmpty && newer.length > 0) {
    const oldest = events.reduce((min, e) => Math.min(min, e.epoch), Number.POSITIVE_INFINITY);
    if (oldest > m.sourceEpoch + 1) {
      throw new TidemarkError(
        `mirror ${w.dir}: the source journal recorded truncations ${m.sourceEpoch + 1}..${oldest - 1} that it no ` +
          'longer lists, since this mirror last connected: what to cut cannot be told; rebaseline this standby',
        { code: 'JOURNAL_MIRROR_RECONCILE', retriable: false, context: { dir: w.dir, sourceEpoch: m.sourceEpoch } },
      );
    }
    const to = newer.reduce((min, e) => (e.toLsn < min ? e.toLsn : min), newer[0]?.toLsn ?? 0n);
    if (to < w.headLsn) {
      log.warn(
        { dir: w.dir, toLsn: String(to), headLsn: String(w.headLsn), sourceEpoch: latest },
        `mirror: the source truncated to LSN ${to} after this mirror received frames above it; cutting back`,
      );
      await w.truncateTo(to);
      cutTo = to;
    }
  }
  await w.setSourceEpoch(latest);
  return { cutTo, sourceEpoch: latest };
}
