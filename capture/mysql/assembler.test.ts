import { describe, expect, it } from 'vitest';
import { asm, cols, query, xid } from '../../test/fixtures/assembler-items.ts';
import type { Entry } from '../../record/record.ts';
import type { TransactionAssembler } from './assembler.ts';
import type { BinlogItem } from './binlog-item.ts';

const gtid = (n: number, end: number, standalone = false): BinlogItem => ({
  type: 'gtid',
  gtid: `0-1-${n}`,
  standalone,
  xa: false,
  endOffset: BigInt(end),
});
const rows = (table: string, n: number, schema = 'app'): BinlogItem => ({
  type: 'rows',
  op: 'insert',
  schema,
  table,
  columns: cols,
  pk: ['id'],
  rows: Array.from({ length: n }, (_, i) => ({ before: null, after: [BigInt(i)] })),
});

function feedAll(a: TransactionAssembler, items: BinlogItem[]): Entry[] {
  return items.flatMap((i) => a.feed(i)).flatMap((o) => (o.kind === 'copy' ? [] : [o.entry]));
}

describe('TransactionAssembler', () => {
  it('turns a DML transaction into rows entries and a commit', () => {
    const a = asm();
    const out = feedAll(a, [gtid(10, 150), rows('t', 3), rows('u', 2), xid(300)]);
    expect(out.map((e) => [e.kind, e.seq])).toEqual([
      ['rows', 10n],
      ['rows', 13n],
      ['commit', 15n],
    ]);
    const commit = out[2];
    expect(commit).toEqual({
      kind: 'commit',
      source: 'src',
      seq: 15n,
      txId: '0-1-10',
      position: { kind: 'mysql', binlog: { file: 'bin.000001', offset: 300n }, gtid: '0-1-10' },
      commitTimeUs: 1_700_000_000_000_000n,
      captureTimeUs: 42n,
      rowCount: 5n,
      phase: 'stream',
    });
    expect(out[0]).toMatchObject({ txId: '0-1-10', schema: 'app', table: 't', op: 'insert', pk: ['id'] });
    expect(a.nextSeq).toBe(16n);
    expect(a.position.binlog.offset).toBe(300n);
  });

  it('emits nothing for a transaction on excluded tables but moves the position', () => {
    const a = asm();
    expect(feedAll(a, [gtid(10, 150), rows('skip', 3), rows('x', 1, 'other'), xid(300)])).toEqual([]);
    expect(a.position).toEqual({ kind: 'mysql', binlog: { file: 'bin.000001', offset: 300n }, gtid: '0-1-10' });
    expect(a.nextSeq).toBe(10n);
  });

  it('filters rows of excluded tables inside a mixed transaction', () => {
    const out = feedAll(asm(), [gtid(10, 150), rows('skip', 3), rows('t', 1), xid(300)]);
    expect(out.map((e) => e.kind)).toEqual(['rows', 'commit']);
    expect(out[1]).toMatchObject({ rowCount: 1n });
  });

  it('makes standalone DDL its own unit and skips DDL on excluded or system tables', () => {
    const a = asm();
    const out = feedAll(a, [
      gtid(10, 150, true),
      query('ALTER TABLE t ADD COLUMN c INT', 200),
      gtid(11, 250, true),
      query('ALTER TABLE skip ADD COLUMN c INT', 300),
      gtid(12, 350, true),
      query('CREATE TABLE mysql.x (a int)', 400, ''),
      gtid(13, 450, true),
      query("CREATE USER u IDENTIFIED BY 'pw'", 500),
      gtid(14, 550, true),
      query('RENAME TABLE t TO t2', 600),
    ]);
    expect(out.map((e) => [e.kind, e.seq, e.txId])).toEqual([
      ['ddl', 10n, '0-1-10'],
      ['commit', 11n, '0-1-10'],
      ['ddl', 12n, '0-1-14'],
      ['commit', 13n, '0-1-14'],
    ]);
    expect(out[0]).toMatchObject({ schema: 'app', tables: [{ schema: 'app', table: 't' }] });
    expect(out[1]).toMatchObject({ rowCount: 0n, position: { binlog: { offset: 200n } } });
    expect(a.position.binlog.offset).toBe(600n);
    expect(a.position.gtid).toBe('0-1-14');
  });

  it('keeps CREATE TABLE … SELECT (DDL inside a transaction) in one unit', () => {
    const out = feedAll(asm(), [
      gtid(10, 150, false),
      query('CREATE TABLE `ctas` (a int)', 200),
      rows('ctas', 2),
      xid(300),
    ]);
    expect(out.map((e) => e.kind)).toEqual(['ddl', 'rows', 'commit']);
    expect(new Set(out.map((e) => e.txId))).toEqual(new Set(['0-1-10']));
  });

  it('handles non-transactional COMMIT queries and MySQL-style BEGIN', () => {
    const a = asm();
    const out = feedAll(a, [gtid(10, 150), rows('t', 1), query('COMMIT', 200)]);
    expect(out.map((e) => e.kind)).toEqual(['rows', 'commit']);
    const m = asm({ start: { kind: 'mysql', binlog: { file: 'bin.000001', offset: 100n } } });
    const mout = feedAll(m, [
      { type: 'gtid', gtid: 'uuid:5', standalone: null, xa: false, endOffset: 150n },
      query('BEGIN', 200),
      rows('t', 1),
      xid(300),
    ]);
    expect(mout.map((e) => [e.kind, e.txId])).toEqual([
      ['rows', 'uuid:5'],
      ['commit', 'uuid:5'],
    ]);
  });

  it('tracks rotations and the multi-domain GTID state', () => {
    const a = asm({ start: { kind: 'mysql', binlog: { file: 'bin.000001', offset: 100n }, gtid: '0-1-9,1-2-5' } });
    feedAll(a, [{ type: 'rotate', file: 'bin.000002', offset: 4n }]);
    expect(a.position.binlog).toEqual({ file: 'bin.000002', offset: 4n });
    const out = feedAll(a, [gtid(10, 150), rows('t', 1), xid(300)]);
    expect(out[1]).toMatchObject({ position: { binlog: { file: 'bin.000002', offset: 300n }, gtid: '0-1-10,1-2-5' } });
  });

  it('uses file:offset as txId without a GTID', () => {
    const a = asm({ start: { kind: 'mysql', binlog: { file: 'bin.000001', offset: 100n } } });
    const out = feedAll(a, [query('BEGIN', 180), rows('t', 1), xid(300)]);
    expect(out[0]?.txId).toBe('bin.000001:100');
    expect(out[1]).not.toHaveProperty('position.gtid');
  });

  it('replays a cut transaction without re-emitting what reached the sink', () => {
    const first = asm();
    const items = [gtid(10, 150), rows('t', 2), rows('t', 3), rows('t', 1), xid(300)];
    const full = feedAll(asm(), items);
    const a1out = feedAll(first, items.slice(0, 3));
    expect(a1out.length).toBe(2);
    const partial = first.partial();
    expect(partial).toEqual({ txId: '0-1-10', seq: 10n, entries: 2 });
    const second = asm({ start: first.position, nextSeq: partial!.seq, replay: partial });
    const rest = feedAll(second, items);
    expect([...a1out, ...rest]).toEqual(full);
  });

  it('refuses a replay that meets a different transaction', () => {
    const a = asm({ replay: { txId: '0-1-99', seq: 10n, entries: 1 } });
    expect(() => a.feed(gtid(10, 150))).toThrow(/resume expected transaction 0-1-99/);
  });

  it('refuses a commit without end offset and a group without commit', () => {
    const a = asm();
    a.feed(gtid(10, 150));
    a.feed(rows('t', 1));
    expect(() => a.feed(gtid(11, 200))).toThrow(/no commit event/);
    const b = asm();
    b.feed(gtid(10, 150));
    expect(() => b.feed(xid(0))).toThrow(/no end offset/);
  });

  it('reports skipped statements by keyword label only', () => {
    const seen: string[] = [];
    const a = asm({ onSkippedStatement: (s) => seen.push(s) });
    feedAll(a, [gtid(10, 150, true), query("GRANT ALL ON *.* TO 'x'@'%' IDENTIFIED BY 'secret'", 200)]);
    expect(seen).toEqual(['GRANT']);
  });
});
