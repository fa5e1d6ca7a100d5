/**
 * The typed layer over the journal: record entries in, record entries out. One entry per frame, encoded with
 * record/codec.ts; a commit entry is exactly the END_OF_UNIT frame of its unit.
 */
import { decodeEntry, encodeEntry } from '../record/codec.ts';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import type { CommitEntry, DdlEntry, Entry, EntrySink, RowsEntry } from '../record/record.ts';
import type { JournalFrame } from './api.ts';
import { JournalReader } from './reader.ts';
import { inspectTail, type TailInfo } from './recovery.ts';
import type { JournalWriter } from './writer.ts';

/** Writes captured entries into a journal. */
export class JournalSink implements EntrySink {
  readonly writer: JournalWriter;
  private lastLsn = 0n;

  constructor(writer: JournalWriter) {
    this.writer = writer;
  }

  /** LSN of the last frame this sink appended (0n before the first). */
  get lsn(): bigint {
    return this.lastLsn;
  }

  /** Appends a rows or ddl entry; waits only under backpressure. */
  async append(entry: RowsEntry | DdlEntry): Promise<void> {
    this.lastLsn = await this.writer.append(encodeEntry(entry), false);
  }

  /** Appends the commit entry as the END_OF_UNIT frame; resolves once the unit is durable per the fsync policy. */
  async commit(entry: CommitEntry): Promise<void> {
    this.lastLsn = await this.writer.append(encodeEntry(entry), true);
  }

  /** The last commit in the journal (appended in this session, else found on open), or null. */
  lastCommit(): CommitEntry | null {
    const p = this.writer.lastUnitPayload();
    return p ? decodeCommit(p, this.writer.dir) : null;
  }
}

export interface JournalEntry {
  readonly lsn: bigint;
  readonly entry: Entry;
  /** True exactly for commit entries: the unit (source transaction) is complete. */
  readonly endOfUnit: boolean;
  /** Where the frame lies (from JournalReader): first LSN of its segment and the header's byte offset. */
  readonly segment?: bigint | undefined;
  readonly offset?: number | undefined;
  /** The frame's payload size in bytes (a measure of the decoded entry's memory). */
  readonly bytes?: number;
}

/** Decodes one frame into its entry, checking that commits and END_OF_UNIT frames coincide. */
export function decodeFrame(f: JournalFrame): JournalEntry {
  let entry: Entry;
  try {
    entry = decodeEntry(f.payload);
  } catch (err) {
    throw new CorruptionError(`journal frame LSN ${f.lsn}: ${(err as Error).message}`, { lsn: f.lsn }, err);
  }
  if ((entry.kind === 'commit') !== f.endOfUnit) {
    throw new CorruptionError(
      `journal frame LSN ${f.lsn}: a ${entry.kind} entry ${f.endOfUnit ? 'ends' : 'does not end'} its unit`,
      { lsn: f.lsn },
    );
  }
  return { lsn: f.lsn, entry, endOfUnit: f.endOfUnit, segment: f.segment, offset: f.offset, bytes: f.payload.length };
}

/** Decodes frames into entries (decodeFrame). */
export async function* readEntries(frames: AsyncIterable<JournalFrame>): AsyncGenerator<JournalEntry> {
  for await (const f of frames) yield decodeFrame(f);
}

function decodeCommit(payload: Uint8Array, dir: string): CommitEntry {
  const e = decodeEntry(payload);
  if (e.kind !== 'commit') {
    throw new CorruptionError(`journal ${dir}: the last unit ends with a ${e.kind} entry, not a commit`, { dir });
  }
  return e;
}

/**
 * The last complete unit's commit entry in the journal at `dir`, or null when it holds none. Read-only and
 * lock-free: usable beside a running writer (for resume and status). It scans the last segment(s).
 */
export async function lastCommit(dir: string): Promise<CommitEntry | null> {
  return commitOfTail(await inspectTail(dir), dir);
}

/** The last complete unit's commit entry of a tail already inspected (lastCommit without a second scan). */
export function commitOfTail(t: TailInfo, dir: string): CommitEntry | null {
  return t.lastUnitPayload ? decodeCommit(t.lastUnitPayload, dir) : null;
}

/** The frame at `lsn`, or null when the journal does not hold it (beyond its head, or before its oldest frame). */
export async function frameAtLsn(dir: string, lsn: bigint): Promise<JournalFrame | null> {
  if (lsn < 1n) return null;
  try {
    for await (const f of new JournalReader({ dir, fromLsn: lsn, follow: false })) {
      return f.lsn === lsn ? { lsn: f.lsn, payload: f.payload.slice(), endOfUnit: f.endOfUnit } : null;
    }
  } catch (err) {
    if (err instanceof TidemarkError && (err.code === 'JOURNAL_GONE' || err.code === 'JOURNAL_BEHIND')) return null;
    throw err;
  }
  return null;
}

/** The commit entry at `lsn`, or null when the journal holds none there. */
export async function commitAtLsn(dir: string, lsn: bigint): Promise<CommitEntry | null> {
  const f = await frameAtLsn(dir, lsn);
  const e = f ? decodeFrame(f).entry : null;
  return e?.kind === 'commit' ? e : null;
}
