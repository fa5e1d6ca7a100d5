import { describe, expect, it } from 'vitest';
import type { TidemarkError } from '../../core/errors.ts';
import type { Column, RowImage, RowOp } from '../../record/record.ts';
import { clearTableStatement, isFirstBaselineChunk, mismatch, PgBatcher, type PgStatement } from './batcher.ts';
import { buildStatements, inlineParams, type TargetTable } from './statements.ts';

const table: TargetTable = {
  schema: 's',
  table: 'T',
  columns: [
    { name: 'id', type: 'integer' },
    { name: 'a', type: 'text' },
    { name: 'n', type: 'numeric(12,2)' },
  ],
  pk: ['id'],
};
const cols: Column[] = ['id', 'a', 'n'].map((name) => ({ name, type: 'x' }));
const st = buildStatements(table, cols);
const other = buildStatements({ ...table, table: 'U' }, cols);

let seq = 1n;
const entry = (op: RowOp, rows: RowImage[], t = 'T') => {
  const e = { schema: 's', table: t, op, seq, txId: `tx${seq}`, rows };
  seq += BigInt(rows.length);
  return e;
};
const ins = (id: number, a: string | null = 'x'): RowImage => ({ before: null, after: [String(id), a, '1.50'] });
const upd = (id: number, to = id): RowImage => ({
  before: [String(id), 'x', '1.50'],
  after: [String(to), 'y', '2.00'],
});
const del = (id: number): RowImage => ({ before: [String(id), 'x', '1.50'], after: null });

describe('PostgreSQL apply batcher', () => {
  it('joins one table’s inserts into one multi-row INSERT with cast literals, tables side by side', () => {
    const b = new PgBatcher();
    expect(b.push(entry('insert', [ins(1), ins(2, "it's")]), st, false)).toEqual([]);
    expect(b.push(entry('insert', [ins(9)], 'U'), other, false)).toEqual([]);
    expect(b.push(entry('insert', [ins(3, null)]), st, false)).toEqual([]);
    const out = b.drain();
    expect(out.map((s) => s.sql)).toEqual([
      `INSERT INTO "s"."T" ("id", "a", "n") VALUES ('1'::integer, 'x'::text, '1.50'::numeric(12,2)), ('2'::integer, 'it''s'::text, '1.50'::numeric(12,2)), ('3'::integer, NULL::text, '1.50'::numeric(12,2))`,
      `INSERT INTO "s"."U" ("id", "a", "n") VALUES ('9'::integer, 'x'::text, '1.50'::numeric(12,2))`,
    ]);
    expect(out[0]!.check).toBe('count');
    expect(out[0]!.rows.map((r) => r.txId)).toEqual(['tx1', 'tx1', 'tx4']);
    expect(b.pendingRows).toBe(0);
  });

  it('updates that keep their key join a VALUES list; a key change goes alone, in table order', () => {
    const b = new PgBatcher();
    b.push(entry('update', [upd(1), upd(2)]), st, false);
    const out = b.push(entry('update', [upd(3, 30)]), st, false);
    expect(out.map((s) => s.sql)).toEqual([
      `UPDATE "s"."T" AS tidemark_t SET "a" = tidemark_v.c1, "n" = tidemark_v.c2 FROM (VALUES (0, '1'::integer, 'y'::text, '2.00'::numeric(12,2)), (1, '2'::integer, 'y'::text, '2.00'::numeric(12,2))) AS tidemark_v(i, c0, c1, c2) WHERE tidemark_t."id" = tidemark_v.c0 RETURNING tidemark_v.i`,
      `UPDATE "s"."T" SET "id" = '30'::integer, "a" = 'y'::text, "n" = '2.00'::numeric(12,2) WHERE "id" = '3'::integer`,
    ]);
    expect(out.map((s) => s.check)).toEqual(['returning', 'count']);
  });

  it('deletes join a VALUES list of keys; one row is the plain form; a key twice starts a new statement', () => {
    const b = new PgBatcher();
    expect(b.push(entry('delete', [del(1), del(2), del(1)]), st, false).map((s) => s.sql)).toEqual([
      `DELETE FROM "s"."T" AS tidemark_t USING (VALUES (0, '1'::integer), (1, '2'::integer)) AS tidemark_v(i, c0) WHERE tidemark_t."id" = tidemark_v.c0 RETURNING tidemark_v.i`,
    ]);
    expect(b.drain().map((s) => s.sql)).toEqual([`DELETE FROM "s"."T" WHERE "id" = '1'::integer`]);
  });

  it('a change of operation, the row limit and baseline upserts start new statements', () => {
    const b = new PgBatcher({ maxRows: 2 });
    const out = [
      ...b.push(entry('insert', [ins(1), ins(2), ins(3)]), st, false),
      ...b.push(entry('delete', [del(1)]), st, false),
      ...b.push(entry('insert', [ins(4)]), st, true),
      ...b.drain(),
    ];
    expect(out.map((s) => [s.op, s.rows.length, s.check])).toEqual([
      ['insert', 2, 'count'],
      ['insert', 1, 'count'],
      ['delete', 1, 'count'],
      ['insert', 1, 'none'],
    ]);
    expect(out[3]!.sql).toContain('ON CONFLICT ("id") DO UPDATE SET "a" = EXCLUDED."a"');
  });

  it('refuses a row without the image its operation needs', () => {
    const b = new PgBatcher();
    expect(() => b.push(entry('update', [{ before: null, after: ['1', 'x', '1'] }]), st, false)).toThrow(
      /lacks an image/,
    );
  });

  it('names the row that matched nothing, by seq, transaction and key', () => {
    const b = new PgBatcher();
    b.push(entry('delete', [del(7), del(8), del(9)]), st, false);
    const s = b.drain()[0] as PgStatement;
    expect(mismatch('t1', s, 3, [0, 1, 2])).toBeNull();
    const e = mismatch('t1', s, 2, [0, 2]) as TidemarkError;
    expect(e.code).toBe('APPLY_DIVERGED');
    expect(e.message).toContain(`delete of s.T at seq ${s.rows[1]!.seq} (source transaction ${s.rows[1]!.txId})`);
    expect(e.message).toContain('matched 2 of 3 rows (key id=8: no such row on the replica)');
    const one = new PgBatcher().push(entry('update', [upd(5, 6)]), st, false)[0]!;
    expect((mismatch('t1', one, 0, null) as TidemarkError).message).toContain(
      'matched 0 rows: no such row on the replica',
    );
    expect(mismatch('t1', one, 1, null)).toBeNull();
  });

  it('inlines parameters as literals, leaving quoted identifiers alone', () => {
    expect(inlineParams('SELECT "a$1", $1::int, $2, $10', ['7', null, '', '', '', '', '', '', '', "o'k\\"])).toBe(
      `SELECT "a$1", '7'::int, NULL,  E'o''k\\\\'`, // pg.escapeLiteral leads an E'' literal with a space
    );
    expect(() => inlineParams('SELECT $2', ['1'])).toThrow(RangeError);
  });

  it('knows a table’s first baseline chunk, and clears the table without a row count', () => {
    expect(isFirstBaselineChunk('baseline:app.t:0')).toBe(true);
    expect(isFirstBaselineChunk('baseline:app.t:10')).toBe(false);
    expect(isFirstBaselineChunk('baseline:0/16B3748')).toBe(false);
    expect(isFirstBaselineChunk('740:0/16B3748')).toBe(false);
    const c = clearTableStatement(st, { schema: 's', table: 'T' });
    expect([c.sql, c.check, mismatch('t1', c, 57, null)]).toEqual(['DELETE FROM "s"."T"', 'none', null]);
  });
});
