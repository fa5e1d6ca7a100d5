import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommitEntry, Phase } from '../record/record.ts';
import { JournalSink, JournalWriter } from '../journal/index.ts';
import { commit, rows } from '../test/fixtures/ship-journal.ts';
import { baselineStarts, journalEnd, type ScanMemo, unitAt } from './journal-units.ts';

let dir: string;
let writer: JournalWriter;
let sink: JournalSink;
let seq = 0n;
let unit = 0;

/**
 * Appends a unit of `frames` rows entries and a commit of `phase` at binlog offset `offset` (the units of one
 * baseline share the snapshot's position and time: `time` defaults to the offset); its LSNs and seqs.
 */
async function unitOf(phase: Phase, offset: number, frames = 2, time = offset) {
  const u = unit++;
  const firstLsn = sink.lsn + 1n;
  const firstSeq = seq + 1n;
  for (let f = 0; f < frames; f++) await sink.append(rows(++seq, `t${u}`, u, f, 0));
  const c: CommitEntry = {
    ...commit(++seq, `t${u}`, u),
    phase,
    position: { kind: 'mysql', binlog: { file: 'mysql-bin.000001', offset: BigInt(offset) } },
    commitTimeUs: 1_700_000_000_000_000n + BigInt(time),
  };
  await sink.commit(c);
  return { firstLsn, firstSeq, commitLsn: sink.lsn, commit: c };
}

const stored = (u: { commitLsn: bigint; commit: CommitEntry }) => ({
  lsn: u.commitLsn,
  phase: u.commit.phase,
  position: u.commit.position,
  commitTimeUs: u.commit.commitTimeUs,
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-units-'));
  writer = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 1 << 20 });
  sink = new JournalSink(writer);
  seq = 0n;
  unit = 0;
});

afterEach(async () => {
  await writer.close();
  await rm(dir, { recursive: true, force: true });
});

describe('baseline starts', () => {
  it('finds the first unit of each baseline, not its later chunks; a retaken baseline starts again', async () => {
    const b1 = await unitOf('baseline', 100);
    const b1b = await unitOf('baseline', 100);
    await unitOf('baseline-end', 100, 0);
    const s1 = await unitOf('stream', 200);
    const b2 = await unitOf('baseline', 300); // cut short …
    const b3 = await unitOf('baseline', 400); // … and taken again (another snapshot)
    await unitOf('baseline', 400);
    const b4 = await unitOf('baseline', 400, 2, 401); // a quiet source: same position, a later snapshot
    await unitOf('baseline-end', 400, 0, 401);
    await writer.flush();
    const all = await baselineStarts(dir, null, { first: false });
    expect(all).toEqual([
      { lsn: b1.firstLsn, seq: b1.firstSeq },
      { lsn: b2.firstLsn, seq: b2.firstSeq },
      { lsn: b3.firstLsn, seq: b3.firstSeq },
      { lsn: b4.firstLsn, seq: b4.firstSeq },
    ]);
    // Inside the first baseline: its next chunk is not a new start; the next baseline is.
    expect(await baselineStarts(dir, stored(b1), { first: true })).toEqual([{ lsn: b2.firstLsn, seq: b2.firstSeq }]);
    expect(await baselineStarts(dir, stored(b1b), { first: true })).toEqual([{ lsn: b2.firstLsn, seq: b2.firstSeq }]);
    expect(await baselineStarts(dir, stored(s1), { first: true })).toEqual([{ lsn: b2.firstLsn, seq: b2.firstSeq }]);
    expect(await baselineStarts(dir, stored(b2), { first: true })).toEqual([{ lsn: b3.firstLsn, seq: b3.firstSeq }]);
    expect(await baselineStarts(dir, stored(b3), { first: true })).toEqual([{ lsn: b4.firstLsn, seq: b4.firstSeq }]);
    expect(await baselineStarts(dir, stored(b4), { first: true })).toEqual([]);
  });

  it('a scan bounded by journalEnd stops there: a baseline written after it is found by the next bounded scan', async () => {
    const s1 = await unitOf('stream', 100);
    await writer.flush();
    const end = await journalEnd(dir);
    expect(end?.segment).toBe(1n);
    const b = await unitOf('baseline', 500);
    await writer.flush();
    const memo: ScanMemo = { after: -1n, lsn: 0n, prev: null };
    expect(await baselineStarts(dir, stored(s1), { first: true, memo, until: end })).toEqual([]);
    expect(await baselineStarts(dir, stored(s1), { first: true, memo, until: await journalEnd(dir) })).toEqual([
      { lsn: b.firstLsn, seq: b.firstSeq },
    ]);
    expect(await journalEnd(join(dir, 'none'))).toBeNull();
  });

  it('a scan that found nothing continues where it stopped (memo), for the same stored position only', async () => {
    const s1 = await unitOf('stream', 100);
    await unitOf('stream', 110);
    await writer.flush();
    const memo: ScanMemo = { after: -1n, lsn: 0n, prev: null };
    expect(await baselineStarts(dir, stored(s1), { first: true, memo })).toEqual([]);
    expect(memo.after).toBe(s1.commitLsn);
    expect(memo.lsn).toBe(sink.lsn);
    const b = await unitOf('baseline', 500);
    await writer.flush();
    expect(await baselineStarts(dir, stored(s1), { first: true, memo })).toEqual([
      { lsn: b.firstLsn, seq: b.firstSeq },
    ]);
    // A memo of another stored position is not used.
    const other: ScanMemo = { after: 999n, lsn: sink.lsn, prev: null };
    expect(await baselineStarts(dir, stored(s1), { first: true, memo: other })).toHaveLength(1);
  });
});

describe('unitAt', () => {
  it('describes the unit starting at an LSN: seqs, LSNs, commit and row counts per table', async () => {
    await unitOf('stream', 100);
    const u = await unitOf('stream', 110, 3);
    await writer.flush();
    const got = await unitAt(dir, u.firstLsn);
    expect(got).toMatchObject({ firstLsn: u.firstLsn, commitLsn: u.commitLsn, firstSeq: u.firstSeq });
    expect(got?.commit.seq).toBe(u.commit.seq);
    expect(Object.keys(got?.changes ?? {})).toEqual(['shop.orders']);
    expect(await unitAt(dir, u.commitLsn + 1n)).toBeNull();
  });
});
