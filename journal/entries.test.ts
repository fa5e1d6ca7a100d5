import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeEntry } from '../record/codec.ts';
import { CorruptionError } from '../core/errors.ts';
import type { CommitEntry, DdlEntry, RowsEntry } from '../record/record.ts';
import { binlogOf } from '../record/position.ts';
import { type JournalEntry, JournalSink, lastCommit, readEntries } from './entries.ts';
import { removeDir, tempDir } from '../test/fixtures/journal-files.ts';
import { JournalReader } from './reader.ts';
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
    columns: [
      { name: 'id', type: 'bigint', unsigned: true },
      { name: 'note', type: 'text' },
    ],
    pk: ['id'],
    rows: Array.from({ length: n }, (_, i) => ({ before: null, after: [BigInt(i), `row ${i} ✓`] })),
  };
}

function commit(seq: bigint, offset: bigint): CommitEntry {
  return {
    kind: 'commit',
    source: 'src',
    seq,
    txId: `0-1-${seq}`,
    position: { kind: 'mysql', binlog: { file: 'mysql-bin.000001', offset }, gtid: `0-1-${offset}` },
    commitTimeUs: 1_700_000_000_000_000n + offset,
    captureTimeUs: 1_700_000_000_000_100n + offset,
    rowCount: 3n,
    phase: 'stream',
  };
}

const ddl: DdlEntry = {
  kind: 'ddl',
  source: 'src',
  seq: 100n,
  txId: 'x',
  schema: 'shop',
  tables: [{ schema: 'shop', table: 'orders' }],
  sql: 'ALTER TABLE orders ADD x INT',
};

async function collect(fromLsn = 1n): Promise<JournalEntry[]> {
  const out: JournalEntry[] = [];
  for await (const e of readEntries(new JournalReader({ dir, fromLsn, follow: false }))) out.push(e);
  return out;
}

describe('journal entries', () => {
  it('writes entries through JournalSink and reads them back', async () => {
    expect(await lastCommit(dir)).toBeNull();
    const w = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 5, segmentBytes: 4096 });
    const sink = new JournalSink(w);
    const written = [rows(1n, 3), rows(4n, 50), commit(54n, 1000n), ddl, commit(101n, 2000n)];
    for (const e of written) {
      if (e.kind === 'commit') await sink.commit(e);
      else await sink.append(e);
    }
    expect(sink.lsn).toBe(5n);
    expect(sink.lastCommit()).toEqual(commit(101n, 2000n));
    expect(await lastCommit(dir)).toEqual(commit(101n, 2000n));
    await w.close();
    const back = await collect();
    expect(back.map((e) => e.entry)).toEqual(written);
    expect(back.map((e) => e.endOfUnit)).toEqual([false, false, true, false, true]);
    expect(back.map((e) => e.lsn)).toEqual([1n, 2n, 3n, 4n, 5n]);
  });

  it('lastCommit ignores an unfinished unit and works beside a running writer', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 4096 });
    const sink = new JournalSink(w);
    await sink.append(rows(1n, 2));
    await sink.commit(commit(3n, 10n));
    await sink.append(rows(4n, 2));
    await w.flush();
    expect(binlogOf((await lastCommit(dir))?.position)?.offset).toBe(10n);
    await w.close();
    const w2 = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 4096 });
    expect(new JournalSink(w2).lastCommit()?.seq).toBe(3n);
    await w2.close();
  });

  it('refuses a commit that does not end its unit, and an end of unit that is not a commit', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 4096 });
    await w.append(encodeEntry(rows(1n, 1)), true);
    await w.close();
    await expect(collect()).rejects.toThrow(CorruptionError);
    await expect(collect()).rejects.toThrow(/LSN 1: a rows entry ends its unit/);
  });
});
