/**
 * What the apply loop says and checks when a target cannot continue: the failure report with the ways past it
 * (tidemark skip, run --rebaseline, exclude + rebaseline), the lost-journal check and its recovery text, and a
 * light read of the target's stored position (to notice `tidemark skip` while the loop waits to retry).
 */
import { targetAdapter } from '../config/engines.ts';
import type { AppliedState } from '../engine/target.ts';
import { describeChain, TidemarkError } from '../core/errors.ts';
import { decodeFrame, frameAtLsn, type JournalFrame, listSegments } from '../journal/index.ts';
import type { Config } from '../config/config.ts';
import type { UnitInfo } from './journal-units.ts';

type Target = Config['targets'][number];

/** A stored position as one comparable string ("seq/lsn", "none" before anything was applied). */
export function positionKey(st: AppliedState | null): string {
  return st ? `${st.seq}/${st.lsn}` : 'none';
}

/** The stored position key read now, or undefined when the target cannot be read. */
export async function readPositionKey(t: Target, source: string): Promise<string | undefined> {
  const r = await targetAdapter(t).readStored(t, source);
  return r.error === undefined && r.stored ? positionKey(r.stored.state) : undefined;
}

const JOURNAL_CODES = new Set(['JOURNAL_BEHIND', 'JOURNAL_GONE', 'JOURNAL_MISMATCH']);

/** The line logged (and shown by `tidemark status`) when a target stops on a non-retriable error. */
export function failureText(target: string, err: unknown, unit: UnitInfo | null, retryMs: number): string {
  const code = err instanceof TidemarkError ? err.code : '';
  const why = describeChain(err);
  const retry = `retried with backoff up to every ${Math.round(retryMs / 1000)} s, and at once when its stored position moves`;
  if (code === 'JOURNAL_GONE') {
    return (
      `target ${target}: ${why}. The journal no longer holds what the target needs next (${retry}). ` +
      `To recover: \`tidemark run --rebaseline\` (a new baseline re-copies every included table; the target jumps to it)`
    );
  }
  if (JOURNAL_CODES.has(code)) return `target ${target}: ${why} (${retry})`;
  const at = unit
    ? ` at the transaction seq ${unit.firstSeq}–${unit.commit.seq} (journal LSN ${unit.firstLsn}–${unit.commitLsn}, ` +
      `committed ${new Date(Number(unit.commit.commitTimeUs / 1000n)).toISOString()})`
    : '';
  const skip = unit ? `\`tidemark skip --target ${target} --seq ${unit.firstSeq}\`` : '`tidemark skip`';
  return (
    `target ${target}: apply stopped${at}: ${why}. Capture and the other targets go on; this target is ${retry}. ` +
    `Ways past it: correct the replica by hand; or ${skip} (skips this one transaction, audited; the replica ` +
    'then lacks its changes); or `tidemark run --rebaseline` (a new baseline re-copies every included table and ' +
    'the target jumps to it); or exclude the table (source.exclude) and `tidemark run --rebaseline`'
  );
}

/** Recovery text for a target whose stored position does not belong to the journal it applies from. */
function lostJournal(target: string, dir: string, st: AppliedState, detail: string): TidemarkError {
  return new TidemarkError(
    `target ${target} stored position seq ${st.seq} at journal LSN ${st.lsn} does not match journal ${dir} ` +
      `(${detail}): the journal was deleted or replaced since this target applied from it. To recover: let capture ` +
      'take a baseline into the new journal (it does so by itself when the journal is empty, else `tidemark run ' +
      `--rebaseline\`), then \`tidemark skip --target ${target} --to-baseline\` restarts the target from that ` +
      'baseline (audited)',
    { code: 'JOURNAL_MISMATCH', retriable: false, context: { target, dir, seq: st.seq, lsn: st.lsn } },
  );
}

/**
 * The frame at the stored LSN must be the commit the position was taken at (a commit with seq ≤ the stored seq).
 * A journal that ends before it, or holds something else there, was replaced: applying on from the stored LSN
 * would skip the new journal's entries by seq and apply the rest without a baseline. Frames retention removed
 * are not checked (the reader reports JOURNAL_GONE).
 */
export async function checkJournalMatches(
  target: string,
  dir: string,
  st: AppliedState | null,
  /** The frame of LSN st.lsn when the caller has read it already (apply-resume.ts), saving a scan for it. */
  known?: JournalFrame,
): Promise<void> {
  if (!st || st.lsn < 1n) return;
  const segs = await listSegments(dir);
  if (segs.length === 0) throw lostJournal(target, dir, st, 'the journal is empty');
  if (st.lsn < (segs[0] as bigint)) return;
  const f = known?.lsn === st.lsn ? known : await frameAtLsn(dir, st.lsn);
  if (!f) throw lostJournal(target, dir, st, `it ends before LSN ${st.lsn}`);
  const e = decodeFrame(f).entry;
  if (e.kind !== 'commit' || e.seq > st.seq) {
    throw lostJournal(target, dir, st, `LSN ${st.lsn} holds a ${e.kind} entry with seq ${e.seq}`);
  }
}
