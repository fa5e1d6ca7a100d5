import { open, unlink } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeEntry, encodeEntry } from '../record/codec.ts';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import type { CommitEntry, RowsEntry } from '../record/record.ts';
import type { JournalFrame } from './api.ts';
import { readEntries } from './entries.ts';
import { removeDir, tempDir } from '../test/fixtures/journal-files.ts';
import { HEADER_BYTES } from './frame.ts';
import { readEntryAt, readFrameAt, SegmentFiles } from './read-at.ts';
import { JournalReader } from './reader.ts';
import { listSegments, segmentPath } from './segments.ts';
import { JournalWriter } from './writer.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

function rows(seq: bigint, n: number): RowsEntry {
  return {
    kind: 'rows',
    source: 'src',
    seq,
    txId: `0-1-${seq}`,
    schema: 'shop',
    table: 'orders',
    op: 'insert',
    columns: [{ name: 'id', type: 'bigint' }],
    pk: ['id'],
    rows: Array.from({ length: n }, (_, i) => ({ before: null, after: [seq + BigInt(i)] })),
  };
}

function commit(seq: bigint): CommitEntry {
  return {
    kind: 'commit',
    source: 'src',
    seq,
    txId: `0-1-${seq}`,
    position: { kind: 'mysql', binlog: { file: 'mysql-bin.000001', offset: seq } },
    commitTimeUs: seq,
    captureTimeUs: seq,
    rowCount: 0n,
    phase: 'stream',
  };
}

/** 40 units of (rows, commit) over small segments; returns every frame with its place. */
async function writeJournal(): Promise<JournalFrame[]> {
  const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 1024 });
  let seq = 1n;
  for (let u = 0; u < 40; u++) {
    await w.append(encodeEntry(rows(seq, 1 + (u % 7))), false);
    seq += BigInt(1 + (u % 7));
    await w.append(encodeEntry(commit(seq)), true);
    seq++;
  }
  await w.close();
  const out: JournalFrame[] = [];
  for await (const f of new JournalReader({ dir, fromLsn: 1n, follow: false }))
    out.push({ ...f, payload: f.payload.slice() });
  return out;
}

describe('readFrameAt', () => {
  it('reads every frame back from the place the reader reported, across segments', async () => {
    const frames = await writeJournal();
    expect(frames).toHaveLength(80);
    const segs = await listSegments(dir);
    expect(segs.length).toBeGreaterThan(3);
    expect(new Set(frames.map((f) => f.segment))).toEqual(new Set(segs));
    for (const f of frames) {
      const back = await readFrameAt(dir, f.segment as bigint, f.offset as number, f.lsn);
      expect(back).toEqual(f);
    }
    // A reader starting mid-journal reports the same places.
    const late: JournalFrame[] = [];
    for await (const f of new JournalReader({ dir, fromLsn: 37n, follow: false })) late.push(f);
    expect(late.map((f) => [f.lsn, f.segment, f.offset])).toEqual(
      frames.slice(36).map((f) => [f.lsn, f.segment, f.offset]),
    );
    // So does one told where frame fromLsn starts (the end of the frame before it), for every frame.
    const starts = frames
      .map((_, i) => i)
      .filter((i) => i > 0 && (i % 7 === 0 || frames[i]?.segment !== frames[i - 1]?.segment));
    expect(starts.length).toBeGreaterThan(12);
    for (const i of starts) {
      const prev = frames[i - 1] as JournalFrame;
      const startAt = {
        segment: prev.segment as bigint,
        offset: (prev.offset as number) + HEADER_BYTES + prev.payload.length,
      };
      const got: JournalFrame[] = [];
      for await (const f of new JournalReader({ dir, fromLsn: prev.lsn + 1n, startAt, follow: false })) {
        got.push({ ...f, payload: f.payload.slice() });
      }
      expect(got).toEqual(frames.slice(i));
    }
    // And one told where an earlier frame of the same segment starts (startAt.lsn): it skips to fromLsn.
    for (const i of starts) {
      const prev = frames[i - 1] as JournalFrame;
      const earlier = frames.find((f) => f.segment === prev.segment) as JournalFrame;
      const startAt = { segment: earlier.segment as bigint, offset: earlier.offset as number, lsn: earlier.lsn };
      const got: JournalFrame[] = [];
      for await (const f of new JournalReader({ dir, fromLsn: prev.lsn + 1n, startAt, follow: false })) {
        got.push({ ...f, payload: f.payload.slice() });
      }
      expect(got).toEqual(frames.slice(i));
    }
  });

  it('readEntries passes the place through and readEntryAt decodes the entry there', async () => {
    await writeJournal();
    let n = 0;
    for await (const e of readEntries(new JournalReader({ dir, fromLsn: 1n, follow: false }))) {
      expect(e.segment).toBeTypeOf('bigint');
      expect(await readEntryAt(dir, e.segment as bigint, e.offset as number, e.lsn)).toEqual(e.entry);
      n++;
    }
    expect(n).toBe(80);
  });

  it('refuses another LSN, a wrong offset and bytes past the end, naming segment and offset', async () => {
    const frames = await writeJournal();
    const f = frames[5] as JournalFrame;
    const seg = f.segment as bigint;
    const off = f.offset as number;
    await expect(readFrameAt(dir, seg, off, f.lsn + 1n)).rejects.toThrow(CorruptionError);
    await expect(readFrameAt(dir, seg, off, f.lsn + 1n)).rejects.toThrow(/where 7 was expected at byte offset/);
    await expect(readFrameAt(dir, seg, off + 1, f.lsn)).rejects.toThrow(
      new RegExp(`segment 0+${seg}\\.tmj: .* at byte offset ${off + 1}`),
    );
    await expect(readFrameAt(dir, seg, 1 << 20, f.lsn)).rejects.toThrow(/ends before the frame header/);
  });

  it('through SegmentFiles (cached blocks): the same frames forwards and backwards, a grown segment re-read', async () => {
    const frames = await writeJournal();
    const files = new SegmentFiles();
    try {
      for (const f of [...frames, ...frames.toReversed()]) {
        expect(await readFrameAt(dir, f.segment as bigint, f.offset as number, f.lsn, files)).toEqual(f);
      }
      // The last segment grows after its block was cached: the new frame is read from the file, not the block.
      const last = frames.at(-1) as JournalFrame;
      const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 1 << 20 });
      await w.append(encodeEntry(commit(1000n)), true);
      await w.close();
      const next: JournalFrame[] = [];
      for await (const f of new JournalReader({ dir, fromLsn: last.lsn + 1n, follow: false })) next.push(f);
      expect(next).toHaveLength(1);
      const n = next[0]!;
      expect((await readFrameAt(dir, n.segment as bigint, n.offset as number, n.lsn, files)).payload).toEqual(
        n.payload,
      );
      await expect(readFrameAt(dir, n.segment as bigint, n.offset as number, n.lsn + 1n, files)).rejects.toThrow(
        CorruptionError,
      );
      const missing = await readFrameAt(dir, 999_999n, 0, 1n, files).catch((e) => e);
      expect(missing).toBeInstanceOf(CorruptionError);
    } finally {
      await files.close();
    }
  });

  it('detects a damaged payload (frame CRC) and a payload cut short', async () => {
    const frames = await writeJournal();
    const f = frames.find((x) => x.payload.length > 20) as JournalFrame;
    const path = segmentPath(dir, f.segment as bigint);
    const fh = await open(path, 'r+');
    await fh.write(new Uint8Array([0xff ^ (f.payload[10] as number)]), 0, 1, (f.offset as number) + HEADER_BYTES + 10);
    await fh.close();
    await expect(readFrameAt(dir, f.segment as bigint, f.offset as number, f.lsn)).rejects.toThrow(
      /frame checksum mismatch at byte offset/,
    );
    const last = frames.at(-1) as JournalFrame;
    const lh = await open(segmentPath(dir, last.segment as bigint), 'r+');
    await lh.truncate((last.offset as number) + HEADER_BYTES + 1);
    await lh.close();
    await expect(readFrameAt(dir, last.segment as bigint, last.offset as number, last.lsn)).rejects.toThrow(
      /ends inside the frame's/,
    );
  });

  it('a segment removed by retention is JOURNAL_GONE; a hole in the middle is corruption', async () => {
    const frames = await writeJournal();
    const segs = await listSegments(dir);
    const first = frames[0] as JournalFrame;
    await unlink(segmentPath(dir, segs[0] as bigint));
    const err = await readFrameAt(dir, first.segment as bigint, first.offset as number, first.lsn).catch((e) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect(err.code).toBe('JOURNAL_GONE');
    expect(err.message).toMatch(new RegExp(`removed by retention: history before LSN ${segs[1]} is gone`));
    const mid = frames.find((f) => f.segment === segs[3]) as JournalFrame;
    await unlink(segmentPath(dir, segs[3] as bigint));
    await expect(readFrameAt(dir, mid.segment as bigint, mid.offset as number, mid.lsn)).rejects.toThrow(
      /is missing while older segments exist/,
    );
  });

  it('readEntryAt refuses an entry whose end-of-unit flag disagrees with its kind', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 1 << 20 });
    await w.append(encodeEntry(rows(1n, 2)), true);
    await w.close();
    const frame = (await readFrameAt(dir, 1n, 0, 1n)) as JournalFrame;
    expect(decodeEntry(frame.payload).kind).toBe('rows');
    await expect(readEntryAt(dir, 1n, 0, 1n)).rejects.toThrow(/a rows entry ends its unit/);
  });
});
