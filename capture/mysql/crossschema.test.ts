import { describe, expect, it } from 'vitest';
import type { Column } from '../../record/record.ts';
import { type AssemblerOutput, TransactionAssembler } from './assembler.ts';
import type { BinlogItem } from './binlog-item.ts';
import { CopyWindows } from './copy-windows.ts';
import { classifyStatement, type TableRef } from './ddl.ts';
import { crossSchemaSteps } from './ddl-crossschema.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';

const filter = createTableFilter(['zoo.*'], []);
const includes = (t: TableRef) => filter.includesTable(t.schema, t.table);

function steps(sql: string) {
  const cls = classifyStatement(sql, 'zoo');
  if (cls.kind !== 'table-ddl') throw new Error(`not table DDL: ${sql}`);
  const r = crossSchemaSteps(cls, includes);
  if (r === null) return null;
  return r.map((s) => (s.kind === 'copy' ? `copy ${s.table.schema}.${s.table.table}` : s.sql));
}

describe('crossSchemaSteps', () => {
  it('leaves statements inside (or wholly outside) the include set alone', () => {
    expect(steps('RENAME TABLE a TO b')).toBeNull();
    expect(steps('RENAME TABLE other.a TO other.b')).toBeNull();
    expect(steps('CREATE TABLE t LIKE s')).toBeNull();
    expect(steps('CREATE TABLE other.t LIKE other.s')).toBeNull();
    expect(steps('ALTER TABLE t ADD COLUMN c INT')).toBeNull();
  });

  it('LIKE a table outside: copy the new table', () => {
    expect(steps('CREATE TABLE t LIKE other.s')).toEqual(['copy zoo.t']);
    expect(steps('CREATE TABLE IF NOT EXISTS zoo.t (LIKE other.s)')).toEqual(['copy zoo.t']);
  });

  it('RENAME pairs: in → copy, out → drop, inside → rename, outside → nothing', () => {
    expect(steps('RENAME TABLE other.t TO t')).toEqual(['copy zoo.t']);
    expect(steps('RENAME TABLE t TO other.t')).toEqual(['DROP TABLE IF EXISTS `zoo`.`t`']);
    expect(steps('RENAME TABLE a TO b, other.x TO other.y, c TO other.c, other.d TO d')).toEqual([
      'RENAME TABLE `zoo`.`a` TO `zoo`.`b`',
      'DROP TABLE IF EXISTS `zoo`.`c`',
      'copy zoo.d',
    ]);
  });

  it('ALTER TABLE … RENAME into the set: copy; out of it and partition exchanges are not handled here', () => {
    expect(steps('ALTER TABLE other.t ADD COLUMN c INT, RENAME TO zoo.t')).toEqual(['copy zoo.t']);
    expect(steps('ALTER TABLE t RENAME TO other.t')).toBeNull();
    expect(steps('ALTER TABLE other.t EXCHANGE PARTITION p WITH TABLE t')).toBeNull();
    expect(steps('ALTER TABLE t RENAME TO u')).toBeNull();
  });

  it('follows chains pair by pair', () => {
    // Moves in, then renamed on: copied under the final name; moves in and out again: nothing.
    expect(steps('RENAME TABLE other.c1 TO tmp, tmp TO c1, other.c2 TO c2, c2 TO other.c3')).toEqual(['copy zoo.c1']);
    // A swap through a table outside: out, then a rename into the freed name, then in.
    expect(steps('RENAME TABLE a TO other.tmp, b TO a, other.tmp TO b')).toEqual([
      'DROP TABLE IF EXISTS `zoo`.`a`',
      'RENAME TABLE `zoo`.`b` TO `zoo`.`a`',
      'copy zoo.b',
    ]);
  });
});

describe('CopyWindows', () => {
  const at = { file: 'bin.000002', offset: 500n };
  it('covers the table until the stream passes the copy position', () => {
    const w = new CopyWindows([{ schema: 'zoo', table: 't', at }]);
    expect(w.covers('zoo', 't', { file: 'bin.000001', offset: 900n })).toBe(true);
    expect(w.covers('zoo', 't', { file: 'bin.000002', offset: 500n })).toBe(true);
    expect(w.covers('zoo', 't', { file: 'bin.000002', offset: 501n })).toBe(false);
    expect(w.covers('zoo', 'u', { file: 'bin.000001', offset: 900n })).toBe(false);
    expect(w.after({ file: 'bin.000002', offset: 400n })).toHaveLength(1);
    expect(w.after({ file: 'bin.000002', offset: 500n })).toEqual([]);
  });
  it('a newer copy of the same table replaces the older window', () => {
    const w = new CopyWindows([{ schema: 'zoo', table: 't', at }]);
    w.add({ schema: 'zoo', table: 't', at: { file: 'bin.000003', offset: 4n } });
    expect(w.list()).toEqual([{ schema: 'zoo', table: 't', at: { file: 'bin.000003', offset: 4n } }]);
  });
});

const cols: Column[] = [{ name: 'id', type: 'int', columnType: 'int', unsigned: false }];
const start = { kind: 'mysql' as const, binlog: { file: 'bin.000001', offset: 100n }, gtid: '0-1-9' };
const gtid = (n: number, end: number, standalone = false): BinlogItem => ({
  type: 'gtid',
  gtid: `0-1-${n}`,
  standalone,
  xa: false,
  endOffset: BigInt(end),
});
const rows = (table: string): BinlogItem => ({
  type: 'rows',
  op: 'insert',
  schema: 'zoo',
  table,
  columns: cols,
  pk: ['id'],
  rows: [{ before: null, after: [1n] }],
});
const xid = (end: number): BinlogItem => ({ type: 'xid', timestampMs: 1_700_000_000_000, endOffset: BigInt(end) });
const query = (sql: string, end: number): BinlogItem => ({
  type: 'query',
  schema: 'zoo',
  sql,
  timestampMs: 1_700_000_001_000,
  endOffset: BigInt(end),
});
const show = (o: AssemblerOutput) =>
  o.kind === 'copy'
    ? ['copy', o.tables.map((t) => t.table).join(','), o.seq]
    : o.kind === 'commit'
      ? ['commit', o.entry.seq, o.entry.copied?.map((c) => `${c.table}@${c.at.offset}`) ?? []]
      : [o.entry.kind, o.entry.seq, o.entry.kind === 'rows' ? o.entry.table : o.entry.sql];

describe('TransactionAssembler: tables moving in', () => {
  it('asks for a copy, then skips the table until the copy position, and every commit carries the window', () => {
    const a = new TransactionAssembler({ source: 's', filter, start, nextSeq: 10n, nowUs: () => 1n });
    const out = [gtid(10, 150, true), query('RENAME TABLE other.t TO t, u TO other.u', 200)].flatMap((i) => a.feed(i));
    expect(out.map(show)).toEqual([
      ['ddl', 10n, 'DROP TABLE IF EXISTS `zoo`.`u`'],
      ['copy', 't', 11n],
      ['commit', 11n, []],
    ]);
    // The stream copied zoo.t at offset 400 in 5 seqs: later entries come after them.
    a.copied([{ schema: 'zoo', table: 't', at: { file: 'bin.000001', offset: 400n } }], 5n);
    const later = [
      gtid(11, 250),
      rows('t'), // before the copy position: already in the copy
      rows('v'),
      xid(300),
      gtid(12, 350),
      rows('t'),
      xid(400),
      gtid(13, 450),
      rows('t'), // after it: captured
      xid(500),
    ].flatMap((i) => a.feed(i));
    expect(later.map(show)).toEqual([
      ['rows', 17n, 'v'],
      ['commit', 18n, ['t@400']],
      ['rows', 19n, 't'],
      ['commit', 20n, []],
    ]);
  });

  it('a restart inside the window (copied from the resume commit) keeps skipping', () => {
    const copied = [{ schema: 'zoo', table: 't', at: { file: 'bin.000001', offset: 400n } }];
    const a = new TransactionAssembler({ source: 's', filter, start, nextSeq: 10n, nowUs: () => 1n, copied });
    const out = [
      gtid(12, 150),
      rows('t'),
      xid(400),
      gtid(13, 450, true),
      query('RENAME TABLE t TO t2', 500), // after the window: an ordinary rename
    ].flatMap((i) => a.feed(i));
    expect(out.map(show)).toEqual([
      ['ddl', 10n, 'RENAME TABLE t TO t2'],
      ['commit', 11n, []],
    ]);
    expect(a.copyWindows).toEqual([]);
  });

  it('one copy request per statement, after its other steps', () => {
    const a = new TransactionAssembler({ source: 's', filter, start, nextSeq: 10n, nowUs: () => 1n });
    const out = [gtid(10, 150, true), query('RENAME TABLE other.a TO a, b TO other.b, other.c TO c', 200)].flatMap(
      (i) => a.feed(i),
    );
    expect(out.map(show)).toEqual([
      ['ddl', 10n, 'DROP TABLE IF EXISTS `zoo`.`b`'],
      ['copy', 'a,c', 11n],
      ['commit', 11n, []],
    ]);
  });

  it('DDL on a table inside its window treats the table as outside', () => {
    const copied = [{ schema: 'zoo', table: 't', at: { file: 'bin.000001', offset: 900n } }];
    const a = new TransactionAssembler({ source: 's', filter, start, nextSeq: 10n, nowUs: () => 1n, copied });
    const out = [
      gtid(12, 150, true),
      query('ALTER TABLE t ADD COLUMN c INT', 200), // in the copy already
      gtid(13, 250, true),
      query('RENAME TABLE t TO t2', 300), // t2 must be copied: the copy of t does not know the rename
    ].flatMap((i) => a.feed(i));
    expect(out.map(show)).toEqual([
      ['copy', 't2', 10n],
      ['commit', 10n, ['t@900']],
    ]);
  });
});
