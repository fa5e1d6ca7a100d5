import { describe, expect, it } from 'vitest';
import type { TidemarkError } from '../core/errors.ts';
import type { Column, RowImage, RowsEntry, Value } from '../record/record.ts';
import { pgGuardedStatements, pgLiteral } from './pg-guard.ts';

const col = (name: string, type: string, columnType?: string): Column =>
  columnType === undefined ? { name, type } : { name, type, columnType };

/** A PostgreSQL table as capture/postgres describes it: pg_type names and format_type texts. */
const COLS: Column[] = [
  col('id', 'int4', 'integer'),
  col('ts', 'timestamp', 'timestamp(6) without time zone'),
  col('tz', 'timestamptz', 'timestamp with time zone'),
  col('amt', 'numeric', 'numeric(38,10)'),
  col('doc', 'jsonb', 'jsonb'),
  col('bin', 'bytea', 'bytea'),
  col('ints', '_int4', 'integer[]'),
  col('u', 'uuid', 'uuid'),
  col('iv', 'interval', 'interval'),
  col('Js"on', 'json', 'json'),
];

const ROW_A: Value[] = [
  '7',
  '2026-12-06 12:00:00.000001',
  '2026-12-06 06:30:00.123456+00',
  '176366.7160493827000000',
  '{"a": [1, "x", null], "it\'s": "\\u00e9"}',
  Uint8Array.of(0, 0xff, 0x27),
  '{1,-1,NULL}',
  '8f14e45f-ceea-167a-5a36-dedd4bea2543',
  '1 mon 2 days 03:04:05.000006',
  null,
];
const ROW_B: Value[] = [...ROW_A.slice(0, 3), '-1.5000000000', null, null, '{}', null, null, '{"k": 1}'];

function entry(op: RowsEntry['op'], rows: RowImage[], over: Partial<RowsEntry> = {}): RowsEntry {
  return {
    kind: 'rows',
    source: 'pgsrc',
    seq: 100n,
    txId: '745',
    schema: 'app',
    table: 'T x',
    op,
    columns: COLS,
    pk: ['id'],
    rows,
    ...over,
  };
}

const T = '"app"."T x"';

describe('PostgreSQL literals', () => {
  it('writes each type as the text the server read, cast to the column type', () => {
    expect(ROW_A.map((v, i) => pgLiteral(v, COLS[i]!))).toEqual([
      "'7'::integer",
      "'2026-12-06 12:00:00.000001'::timestamp(6) without time zone",
      "'2026-12-06 06:30:00.123456+00'::timestamp with time zone",
      "'176366.7160493827000000'::numeric(38,10)",
      ` E'{"a": [1, "x", null], "it''s": "\\\\u00e9"}'::jsonb`,
      "'\\x00ff27'::bytea",
      "'{1,-1,NULL}'::integer[]",
      "'8f14e45f-ceea-167a-5a36-dedd4bea2543'::uuid",
      "'1 mon 2 days 03:04:05.000006'::interval",
      'NULL',
    ]);
  });

  it('falls back to the pg_type name, writes numbers as text and refuses NUL as REWIND_VALUE', () => {
    expect(pgLiteral(5n, col('n', 'int8'))).toBe("'5'::int8");
    expect(pgLiteral('{a}', col('a', '_text'))).toBe("'{a}'::_text");
    expect(() => pgLiteral('a\u0000b', COLS[4]!)).toThrow(
      expect.objectContaining({ code: 'REWIND_VALUE' }) as unknown as TidemarkError,
    );
  });
});

describe('PostgreSQL guarded statements', () => {
  const lit = (i: number, r: Value[] = ROW_A) => pgLiteral(r[i]!, COLS[i]!);
  /** The guard on image r: the key with =, every other column IS NOT DISTINCT FROM, json as text. */
  const guard = (r: Value[]) =>
    ` WHERE "id" = ${lit(0, r)} AND ` +
    COLS.slice(1, 9)
      .map((c, j) => `"${c.name}" IS NOT DISTINCT FROM ${lit(j + 1, r)}`)
      .join(' AND ') +
    ` AND "Js""on"::text IS NOT DISTINCT FROM ${lit(9, r)}::text`;

  it('undoes an update: SET the before image WHERE the row holds the after image', () => {
    const [s, ...rest] = pgGuardedStatements(entry('update', [{ before: ROW_A, after: ROW_B }]), 'undo', {
      txId: '745',
    });
    expect(rest).toEqual([]);
    const set = COLS.map((c, i) => `${c.name === 'Js"on' ? '"Js""on"' : `"${c.name}"`} = ${lit(i)}`).join(', ');
    expect(s).toEqual({
      sql: `UPDATE ${T} SET ${set}${guard(ROW_B)}`,
      expect: 1,
      what: 'undo update of app.T x (id=7) at seq 100 of tx 745',
      seq: 100n,
      kind: 'update',
    });
  });

  it('redoes a delete and undoes an insert as guarded DELETEs; undoes a delete as an INSERT', () => {
    const del = entry('delete', [{ before: ROW_A, after: null }]);
    expect([...pgGuardedStatements(del, 'redo', { txId: '745' })].map((s) => s.sql)).toEqual([
      `DELETE FROM ${T}${guard(ROW_A)}`,
    ]);
    const ins = entry('insert', [{ before: null, after: ROW_B }]);
    expect([...pgGuardedStatements(ins, 'undo', { txId: '745' })].map((s) => [s.sql, s.kind])).toEqual([
      [`DELETE FROM ${T}${guard(ROW_B)}`, 'delete'],
    ]);
    const [i] = pgGuardedStatements(del, 'undo', { txId: '745' });
    const names = COLS.map((c) => (c.name === 'Js"on' ? '"Js""on"' : `"${c.name}"`)).join(', ');
    expect(i).toMatchObject({
      sql: `INSERT INTO ${T} (${names}) VALUES (${COLS.map((_, j) => lit(j)).join(', ')})`,
      expect: 1,
      kind: 'insert',
    });
  });

  it('writes multi-row INSERTs bounded by rows, newest first on undo, naming the range', () => {
    const rows = [1, 2, 3].map((k) => ({ before: [`${k}`, ...ROW_A.slice(1)], after: null }));
    const out = [...pgGuardedStatements(entry('delete', rows), 'undo', { txId: '745', maxRows: 2 })];
    expect(out.map((s) => [s.expect, s.seq, s.what])).toEqual([
      [2, 102n, 'undo delete of app.T x (2 rows: id=3 ... id=2) at seq 101..102 of tx 745'],
      [1, 100n, 'undo delete of app.T x (id=1) at seq 100 of tx 745'],
    ]);
    expect(out[0]!.sql).toMatch(/VALUES \('3'::integer, .*\), \('2'::integer, /);
  });

  it('leaves out skipped columns and matches a keyless row by ctid', () => {
    const e = entry('update', [{ before: ROW_A, after: ROW_B }], { pk: [] });
    const skip = new Set(COLS.slice(1).map((c) => c.name));
    const [s] = pgGuardedStatements(e, 'redo', { txId: '745', skipColumns: skip });
    expect(s!.sql).toBe(
      `UPDATE ${T} SET "id" = '7'::integer WHERE ctid = (SELECT ctid FROM ${T} WHERE "id" IS NOT DISTINCT FROM '7'::integer LIMIT 1 FOR UPDATE)`,
    );
  });

  it('yields only rows [fromRow, toRow) and refuses an image of the wrong width', () => {
    const rows = [1, 2, 3].map((k) => ({ before: [`${k}`, ...ROW_A.slice(1)], after: [`${k}`, ...ROW_B.slice(1)] }));
    const out = [...pgGuardedStatements(entry('update', rows), 'redo', { txId: '745', fromRow: 1, toRow: 2 })];
    expect(out.map((s) => s.seq)).toEqual([101n]);
    const bad = entry('update', [{ before: ['1'], after: ROW_B }]);
    expect(() => [...pgGuardedStatements(bad, 'redo', { txId: '745' })]).toThrow(
      /before image at seq 100 has 1 values/,
    );
  });
});
