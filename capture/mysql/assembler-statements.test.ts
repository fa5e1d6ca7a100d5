/**
 * Assembler behaviour for what ROW-format capture cannot take as rows: statement-logged DML, XA transactions,
 * multi-table DDL across the include boundary, and the commit-time floor after a baseline.
 */
import { describe, expect, it } from 'vitest';
import { asm, cols, query, xid } from '../../test/fixtures/assembler-items.ts';
import type { Entry } from '../../record/record.ts';
import { TidemarkError } from '../../core/errors.ts';
import type { TransactionAssembler } from './assembler.ts';
import type { BinlogItem } from './binlog-item.ts';
import { xidOfStatement } from './statement-errors.ts';

const gtid = (n: number, end: number, more: Partial<Extract<BinlogItem, { type: 'gtid' }>> = {}): BinlogItem => ({
  type: 'gtid',
  gtid: `0-1-${n}`,
  standalone: false,
  xa: false,
  endOffset: BigInt(end),
  ...more,
});
const rows = (table: string, schema = 'app'): BinlogItem => ({
  type: 'rows',
  op: 'insert',
  schema,
  table,
  columns: cols,
  pk: ['id'],
  rows: [{ before: null, after: [1n] }],
});

function feedAll(a: TransactionAssembler, items: BinlogItem[]): Entry[] {
  return items.flatMap((i) => a.feed(i)).flatMap((o) => (o.kind === 'copy' ? [] : [o.entry]));
}

function thrown(fn: () => unknown): TidemarkError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TidemarkError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('statement-logged DML', () => {
  it('stops at DML on an included table, naming table, kind and position', () => {
    const a = asm();
    a.feed(gtid(10, 150));
    const err = thrown(() => a.feed(query('UPDATE t SET v = v + 1', 260)));
    expect(err.code).toBe('STATEMENT_DML');
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(/statement-logged UPDATE on app\.t in the binlog at bin\.000001:150 \(GTID 0-1-10\)/);
    expect(err.message).toMatch(/binlog_format=ROW/);
    expect(err.message).toMatch(/tidemark run --rebaseline/);
    expect(err.message).not.toMatch(/v \+ 1/); // never the statement text
    // Nothing moved: a restart meets it again.
    expect(a.position.binlog.offset).toBe(100n);
  });

  it('ignores DML on tables outside the include set, and moves on', () => {
    const seen: string[] = [];
    const a = asm({ onSkippedStatement: (s) => seen.push(s) });
    const out = feedAll(a, [
      gtid(10, 150),
      query('INSERT INTO other.x VALUES (1)', 200),
      query('UPDATE skip SET v = 1', 250),
      xid(300),
    ]);
    expect(out).toEqual([]);
    expect(seen).toEqual(['INSERT', 'UPDATE']);
    expect(a.position.binlog.offset).toBe(300n);
  });

  it('stops at a multi-table statement when one of its tables is included', () => {
    const a = asm();
    a.feed(gtid(10, 150));
    expect(() => a.feed(query('UPDATE other.x b JOIN app.t a ON a.id = b.id SET b.v = 1', 260, 'other'))).toThrow(
      /multi-table UPDATE on app\.t/,
    );
  });

  it('treats a statement with an unknown target as included when its default schema is', () => {
    const a = asm();
    a.feed(gtid(10, 150));
    expect(() => a.feed(query('SELECT f(1)', 260))).toThrow(/default schema app \(target not known\)/);
    const b = asm();
    expect(feedAll(b, [gtid(10, 150), query('SELECT f(1)', 260, 'other'), xid(300)])).toEqual([]);
  });
});

describe('XA', () => {
  const prepare = (n: number, end: number, id = "'x1'") => gtid(n, end, { xa: 'prepare', xid: id });
  const complete = (n: number, end: number, id = "'x1'") => gtid(n, end, { xa: 'complete', xid: id, standalone: true });

  it('skips XA transactions on other tables, prepare and commit, and moves on', () => {
    const a = asm();
    const out = feedAll(a, [
      prepare(10, 150),
      rows('x', 'other'),
      query("XA END X'7831',X'',1", 250, 'other'),
      { type: 'xa-prepare', endOffset: 300n },
      complete(11, 350),
      query("XA COMMIT X'7831',X'',1", 400, 'other'),
      gtid(12, 450),
      rows('t'),
      xid(500),
    ]);
    expect(out.map((e) => [e.kind, e.txId])).toEqual([
      ['rows', '0-1-12'],
      ['commit', '0-1-12'],
    ]);
    expect(a.position).toEqual({ kind: 'mysql', binlog: { file: 'bin.000001', offset: 500n }, gtid: '0-1-12' });
  });

  it('refuses a prepared XA transaction on included tables, naming the XID, the tables and the way out', () => {
    const a = asm();
    feedAll(a, [prepare(10, 150, "'x2','bq',7"), rows('t'), rows('x', 'other'), rows('u'), query("XA END 'x2'", 260)]);
    const err = thrown(() => a.feed({ type: 'xa-prepare', endOffset: 300n }));
    expect(err.code).toBe('UNSUPPORTED_XA');
    expect(err.message).toMatch(/XA transaction 'x2','bq',7 prepared at bin\.000001:100 \(GTID 0-1-10\)/);
    expect(err.message).toMatch(/app\.t, app\.u/);
    expect(err.message).toMatch(/--rebaseline/);
    expect(err.message).toMatch(/source\.exclude/);
    expect(a.position.binlog.offset).toBe(100n); // a restart meets it again
  });

  it('never journals the rows of a prepared transaction', () => {
    const a = asm();
    expect(a.feed(prepare(10, 150))).toEqual([]);
    expect(a.feed(rows('t'))).toEqual([]);
    expect(a.nextSeq).toBe(10n);
  });

  it('skips XA ROLLBACK / COMMIT groups whatever their XID', () => {
    const a = asm();
    expect(feedAll(a, [complete(10, 150, "'zz'"), query("XA ROLLBACK 'zz'", 200)])).toEqual([]);
    expect(a.position.binlog.offset).toBe(200n);
  });

  it('marks an XA group by its XA START statement where the GTID does not (MySQL)', () => {
    const a = asm();
    feedAll(a, [query("XA START 'm1'", 150), rows('t'), query("XA END 'm1'", 200)]);
    expect(() => a.feed({ type: 'xa-prepare', endOffset: 250n })).toThrow(/XA transaction 'm1'/);
  });

  it('reads XIDs from XA statements as MariaDB logs them', () => {
    expect(xidOfStatement("XA COMMIT X'7831',X'',1")).toEqual({ verb: 'COMMIT', xid: "'x1'" });
    expect(xidOfStatement("XA ROLLBACK X'7832',X'6271',7")).toEqual({ verb: 'ROLLBACK', xid: "'x2','bq',7" });
    expect(xidOfStatement("xa start 'a''b'")).toEqual({ verb: 'START', xid: "X'612762'" });
    expect(xidOfStatement("XA COMMIT X'00ff' ONE PHASE")).toEqual({ verb: 'COMMIT', xid: "X'00ff'" });
  });
});

describe('multi-table DDL across the include boundary', () => {
  it('journals a DROP of included and excluded tables as a DROP of the included ones only', () => {
    const a = asm();
    const out = feedAll(a, [
      gtid(10, 150, { standalone: true }),
      query('DROP TABLE app.dropme, other.src', 200, 'other'),
    ]);
    expect(out[0]).toMatchObject({
      kind: 'ddl',
      sql: 'DROP TABLE `app`.`dropme`',
      tables: [{ schema: 'app', table: 'dropme' }],
      schema: 'other',
    });
    expect(out[1]?.kind).toBe('commit');
  });

  it('journals a DROP naming only included tables verbatim', () => {
    const out = feedAll(asm(), [gtid(10, 150, { standalone: true }), query('DROP TABLE a, b', 200)]);
    expect(out[0]).toMatchObject({ kind: 'ddl', sql: 'DROP TABLE a, b' });
  });
});

describe('commit times', () => {
  it('never go below the last journaled commit (a baseline snapshot time with sub-seconds)', () => {
    // Baseline at …001.500 s; the next binlog commits carry whole seconds …001 and …000 (statement start times).
    const a = asm({ lastCommitTimeUs: 1_700_000_001_500_000n });
    const out = feedAll(a, [
      gtid(10, 150),
      rows('t'),
      xid(200, 1_700_000_001_000),
      gtid(11, 250),
      rows('t'),
      xid(300, 1_700_000_000_000),
      gtid(12, 350),
      rows('t'),
      xid(400, 1_700_000_003_000),
    ]);
    const times = out.flatMap((e) => (e.kind === 'commit' ? [e.commitTimeUs] : []));
    expect(times).toEqual([1_700_000_001_500_000n, 1_700_000_001_500_000n, 1_700_000_003_000_000n]);
  });
});

describe('temporary tables (MIXED format logs their statements)', () => {
  it('ignores statement-logged DML on a temporary table of the same session, not of another', () => {
    const q = (sql: string, end: number, threadId: number): BinlogItem => ({
      type: 'query',
      schema: 'app',
      sql,
      timestampMs: 1_700_000_001_000,
      endOffset: BigInt(end),
      threadId,
    });
    const a = asm();
    const out = feedAll(a, [
      gtid(10, 150, { standalone: true }),
      q('CREATE TEMPORARY TABLE tmp (id INT)', 200, 7),
      gtid(11, 250),
      q('INSERT INTO tmp VALUES (1)', 300, 7),
      q('COMMIT', 350, 7),
    ]);
    expect(out).toEqual([]);
    expect(a.position.binlog.offset).toBe(350n);
    a.feed(gtid(12, 400));
    expect(() => a.feed(q('INSERT INTO tmp VALUES (1)', 450, 8))).toThrow(
      /STATEMENT|statement-logged INSERT on app\.tmp/,
    );
  });
});

describe('CREATE TABLE … SELECT logged as a statement', () => {
  it('stops on an included table (its rows are not in the binlog), skips it elsewhere', () => {
    const a = asm();
    a.feed(gtid(10, 150, { standalone: true }));
    expect(() => a.feed(query('CREATE TABLE app.c2 SELECT id FROM app.t', 200))).toThrow(
      /statement-logged CREATE TABLE … SELECT on app\.c2/,
    );
    const b = asm();
    expect(feedAll(b, [gtid(10, 150, { standalone: true }), query('CREATE TABLE other.c SELECT 1', 200)])).toEqual([]);
    expect(b.position.binlog.offset).toBe(200n);
    const c = asm();
    const out = feedAll(c, [gtid(10, 150), query('CREATE TABLE `app`.`c1` (\n  `a` int(1) NOT NULL\n)', 200)]);
    expect(out[0]).toMatchObject({ kind: 'ddl' });
  });
});

describe('ALTER TABLE across the include boundary', () => {
  it('journals a move out as a DROP and stops at what a target cannot repeat', () => {
    const out = feedAll(asm(), [gtid(10, 150, { standalone: true }), query('ALTER TABLE t RENAME TO other.t', 200)]);
    expect(out[0]).toMatchObject({ kind: 'ddl', sql: 'DROP TABLE IF EXISTS `app`.`t`', tables: [{ table: 't' }] });
    const a = asm();
    a.feed(gtid(10, 150, { standalone: true }));
    const err = thrown(() => a.feed(query('ALTER TABLE t EXCHANGE PARTITION p WITH TABLE other.x', 200)));
    expect(err.code).toBe('CROSS_SCHEMA_DDL');
    expect(err.message).toMatch(/EXCHANGE PARTITION .*: app\.t, other\.x in the binlog at bin\.000001:150/);
    expect(err.message).toMatch(/--rebaseline/);
  });
});

describe('schema objects', () => {
  it('journals the DDL of views, routines, triggers and events of included tables and schemas only', () => {
    const seen: string[] = [];
    const a = asm({ onSkippedStatement: (s) => seen.push(s) });
    const standalone = (n: number, end: number) => gtid(n, end, { standalone: true });
    const out = feedAll(a, [
      standalone(10, 150),
      query('CREATE DEFINER=`r`@`h` VIEW v AS SELECT 1', 200),
      standalone(11, 250),
      query('CREATE DEFINER=`r`@`h` TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO u VALUES (1)', 300),
      standalone(12, 350),
      query('CREATE TRIGGER tr2 AFTER INSERT ON skip FOR EACH ROW SET @a = 1', 400), // app.skip is excluded
      standalone(13, 450),
      query('CREATE PROCEDURE p() SELECT 1', 500, 'other'), // another schema
      standalone(14, 550),
      query('DROP EVENT IF EXISTS e', 600),
    ]);
    const ddl = out.filter((e) => e.kind === 'ddl');
    expect(ddl.map((e) => e.sql)).toEqual([
      'CREATE DEFINER=`r`@`h` VIEW v AS SELECT 1',
      'CREATE DEFINER=`r`@`h` TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO u VALUES (1)',
      'DROP EVENT IF EXISTS e',
    ]);
    expect(ddl.every((e) => e.kind === 'ddl' && e.tables.length === 0 && e.schema === 'app')).toBe(true);
    expect(out.filter((e) => e.kind === 'commit')).toHaveLength(3);
    expect(seen).toEqual(['CREATE TRIGGER', 'CREATE PROCEDURE']);
    expect(a.position.binlog.offset).toBe(600n);
  });
});
