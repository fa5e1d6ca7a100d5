/**
 * Finding units (source transactions, baseline chunks) in a journal for the apply side: the first unit after a
 * target's stored position (`tidemark skip`, the apply loop's failure report), and the start of a newer baseline
 * (the apply loop jumps to it instead of applying what the baseline replaces; `tidemark skip --to-baseline`).
 *
 * A baseline start is the first unit of a baseline: a unit whose commit has phase 'baseline' and whose previous
 * commit does not belong to the same baseline (its phase is not 'baseline', or its position or commit time — the
 * snapshot's, shared by every unit of one baseline — is another). A baseline cut short and taken again starts
 * again (a new snapshot), so jumping to any baseline start is safe: every baseline drops and re-creates every
 * included table from its snapshot.
 */
import { decodeEntry } from '../record/codec.ts';
import { samePosition, type SourcePosition } from '../record/position.ts';
import type { CommitEntry, Entry, Phase } from '../record/record.ts';
import { stat } from 'node:fs/promises';
import { decodeFrame, JournalReader, listSegments, segmentPath } from '../journal/index.ts';

export interface UnitInfo {
  /** LSN of the unit's first frame and of its commit frame. */
  readonly firstLsn: bigint;
  readonly commitLsn: bigint;
  /** Seq of the unit's first entry (the commit's own seq for a unit of just a commit). */
  readonly firstSeq: bigint;
  readonly commit: CommitEntry;
  /** Per table ("schema.table" or "DDL schema"): the operations and their row counts. */
  readonly changes: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** Where reading can start at or after `lsn` (a journal whose older segments retention removed starts later). */
async function startLsn(dir: string, lsn: bigint): Promise<bigint> {
  const oldest = (await listSegments(dir))[0];
  return oldest !== undefined && oldest > lsn ? oldest : lsn;
}

/** The first complete unit at or after `fromLsn` (which must be a unit's first frame), or null at the end. */
export async function unitAt(dir: string, fromLsn: bigint, signal?: AbortSignal): Promise<UnitInfo | null> {
  let firstLsn: bigint | null = null;
  let firstSeq: bigint | null = null;
  const changes: Record<string, Record<string, number>> = {};
  const reader = new JournalReader({ dir, fromLsn: fromLsn < 1n ? 1n : fromLsn, follow: false, ...opt(signal) });
  for await (const f of reader) {
    const { entry } = decodeFrame(f);
    firstLsn ??= f.lsn;
    firstSeq ??= entry.seq;
    if (entry.kind === 'commit') {
      return { firstLsn, commitLsn: f.lsn, firstSeq, commit: entry, changes };
    }
    count(changes, entry);
  }
  return null;
}

function count(changes: Record<string, Record<string, number>>, e: Exclude<Entry, CommitEntry>): void {
  const key = e.kind === 'rows' ? `${e.schema}.${e.table}` : `DDL ${e.schema ?? ''}`.trim();
  const per = changes[key] ?? {};
  changes[key] = per;
  const op = e.kind === 'rows' ? e.op : 'ddl';
  per[op] = (per[op] ?? 0) + (e.kind === 'rows' ? e.rows.length : 1);
}

const opt = (signal: AbortSignal | undefined) => (signal ? { signal } : {});

/** Whether `c` is a later unit of the same baseline as the commit `prev` (same snapshot: position and time). */
function sameBaseline(prev: Prev, c: CommitEntry): boolean {
  const p = prev.position;
  return prev.phase === 'baseline' && p !== null && samePosition(p, c.position) && prev.commitTimeUs === c.commitTimeUs;
}

interface Prev {
  readonly phase: Phase | null;
  readonly position: SourcePosition | null;
  readonly commitTimeUs: bigint | null;
}

/** The commit a scan continues from: the target's stored position (null: nothing applied yet). */
export interface After extends Prev {
  readonly lsn: bigint;
}

export interface BaselineStart {
  /** LSN of the baseline's first frame. */
  readonly lsn: bigint;
  /** Seq of its first entry. */
  readonly seq: bigint;
}

/**
 * How far an earlier scan from the same `after` got without finding a start (the apply loop scans again at every
 * open: a failed target re-opens every minute while the journal grows behind it, and must not read it all again).
 */
export interface ScanMemo {
  after: bigint;
  lsn: bigint;
  prev: Prev | null;
}

/**
 * Baseline starts after `after` (the whole journal from its oldest retained frame when null), in LSN order.
 * `first`: stop at the first one. Only whole units count (a unit still being written is not read to its end).
 */
/** A point in a journal: a segment (its first LSN) and a byte size of it. */
export interface JournalPoint {
  readonly segment: bigint;
  readonly bytes: number;
}

/** Where the journal at `dir` ends now (its last segment and that file's size), or null when it has no segment. */
export async function journalEnd(dir: string): Promise<JournalPoint | null> {
  const last = (await listSegments(dir)).at(-1);
  if (last === undefined) return null;
  try {
    return { segment: last, bytes: (await stat(segmentPath(dir, last))).size };
  } catch {
    return null; // removed meanwhile: scan without a bound
  }
}

/** Frame `f` lies at or beyond `p`. */
function beyond(f: { segment?: bigint; offset?: number }, p: JournalPoint): boolean {
  const seg = f.segment ?? 0n;
  return seg > p.segment || (seg === p.segment && (f.offset ?? 0) >= p.bytes);
}

/**
 * `until`: stop at this point (journalEnd before the scan) instead of chasing a writer that keeps appending — the
 * apply loop's start would otherwise read all a running capture writes meanwhile (~0.2 s at the start of the spine
 * bench's bulk catch-up) before applying anything. A baseline written after it is found at the next open.
 */
export async function baselineStarts(
  dir: string,
  after: After | null,
  opts: {
    first: boolean;
    signal?: AbortSignal;
    memo?: ScanMemo;
    until?: JournalPoint | null;
    /** Where an earlier frame at or before the scan's first starts (JournalReaderOptions.startAt). */
    startAt?: { segment: bigint; offset: number; lsn: bigint };
  },
): Promise<BaselineStart[]> {
  const out: BaselineStart[] = [];
  const afterLsn = after?.lsn ?? 0n;
  const memo = opts.memo?.after === afterLsn ? opts.memo : undefined;
  let prev: Prev = (memo ? memo.prev : after) ?? { phase: null, position: null, commitTimeUs: null };
  let unitFirst: { lsn: bigint; payload: Uint8Array } | null = null;
  const want = (memo ? memo.lsn : afterLsn) + 1n;
  const from = await startLsn(dir, want);
  // Retention removed frames after `after`: the first retained frame may be inside a unit, so the first unit
  // read is never taken as a start (a reader then reports the gap instead).
  let trusted = from === want;
  const at = opts.startAt && opts.startAt.lsn <= from ? { startAt: opts.startAt } : {};
  for await (const f of new JournalReader({ dir, fromLsn: from, follow: false, ...at, ...opt(opts.signal) })) {
    if (opts.until && beyond(f, opts.until)) break;
    if (!f.endOfUnit) {
      unitFirst ??= { lsn: f.lsn, payload: f.payload.slice() };
      continue;
    }
    const { entry } = decodeFrame(f);
    if (entry.kind !== 'commit') continue;
    const start = trusted && entry.phase === 'baseline' && !sameBaseline(prev, entry);
    trusted = true;
    if (start) {
      const seq = unitFirst ? decodeEntry(unitFirst.payload).seq : entry.seq;
      out.push({ lsn: unitFirst?.lsn ?? f.lsn, seq });
      if (opts.first) return out;
    }
    prev = entry;
    unitFirst = null;
    if (opts.memo && out.length === 0) Object.assign(opts.memo, { after: afterLsn, lsn: f.lsn, prev });
  }
  return out;
}
