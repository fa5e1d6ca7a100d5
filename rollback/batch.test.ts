import { describe, expect, it } from 'vitest';
import type { Column, RowImage, RowsEntry, Value } from '../record/record.ts';
import { batchItems, mergeRun } from './batch.ts';
import { batchShape, columnsComment } from '../mysql/batch-sql.ts';
import { type GuardedStatement, guardedStatements, type PlanItem } from './guard.ts';

const col = (name: string, type: string, columnType = type): Column => ({ name, type, columnType });
const COLS: Column[] = [col('id', 'int'), col('v', 'varchar'), col('n', 'decimal', 'decimal(10,2)')];

function entry(op: RowsEntry['op'], rows: RowImage[], over: Partial<RowsEntry> = {}): RowsEntry {
  return {
    kind: 'rows',
    source: 'src',
    seq: 100n,
    txId: 'tx1',
    schema: 's',
    table: 't',
    op,
    columns: COLS,
    pk: ['id'],
    rows,
    ...over,
  };
}

const upd = (id: bigint, from: string, to: string): RowImage => ({
  before: [id, from, '1.50'],
  after: [id, to, '1.50'],
});
const del = (id: bigint, v: Value = 'x'): RowImage => ({ before: [id, v, null], after: null });

function stmts(e: RowsEntry, dir: 'undo' | 'redo' = 'redo'): PlanItem[] {
  return [...guardedStatements(e, dir, { flavor: 'mariadb', txId: e.txId })].map((stmt) => ({ kind: 'stmt', stmt }));
}

async function collect(items: PlanItem[], opts = {}): Promise<PlanItem[]> {
  async function* gen(): AsyncGenerator<PlanItem> {
    yield* items;
  }
  const out: PlanItem[] = [];
  for await (const it of batchItems(gen(), opts)) out.push(it);
  return out;
}

const sqlOf = (it: PlanItem | undefined): string => (it?.kind === 'stmt' ? it.stmt.sql : `<${it?.kind}>`);
const stmtOf = (it: PlanItem | undefined): GuardedStatement => {
  if (it?.kind !== 'stmt') throw new Error(`not a statement: ${it?.kind}`);
  return it.stmt;
};

describe('multi-row statements', () => {
  it('UPDATE: a typed constructor joined to the table by its key, the guard in ON, rows in order', async () => {
    const out = await collect(stmts(entry('update', [upd(1n, 'a', 'b'), upd(2n, "q'", 'c')])));
    expect(out).toHaveLength(1);
    const s = stmtOf(out[0]);
    expect(s.sql).toBe(
      'UPDATE (WITH tidemark_v(k0,c0,c1,n0) AS (VALUES /* key: k0 = `id`; held: c0 = `v`, c1 = `n`; written: n0 = `v` */ ' +
        '(NULL,(SELECT `v` FROM `s`.`t` WHERE 0),NULL,NULL),\n' +
        "(1,'a',1.50,'b'),\n(2,'q\\'',1.50,'c')\n) SELECT * FROM tidemark_v) tidemark_v STRAIGHT_JOIN `s`.`t` ON " +
        '`s`.`t`.`id` = tidemark_v.k0 AND `s`.`t`.`v` <=> tidemark_v.c0 AND `s`.`t`.`n` <=> tidemark_v.c1 ' +
        'SET `s`.`t`.`v` = tidemark_v.n0',
    );
    expect(s.expect).toBe(2);
    expect(s.kind).toBe('update');
    expect(s.seq).toBe(100n);
    expect(s.what).toBe('redo update of `s`.`t` (2 rows: id=1 ... id=2) at seq 100..101 of tx tx1');
    expect(s.batch).toBeUndefined();
    expect(s.rows?.map((r) => r.sql)).toEqual([
      "UPDATE `s`.`t` SET `v` = 'b' WHERE `id` = 1 AND `v` <=> 'a' AND `n` <=> 1.50",
      "UPDATE `s`.`t` SET `v` = 'c' WHERE `id` = 2 AND `v` <=> 'q\\'' AND `n` <=> 1.50",
    ]);
  });

  it('DELETE names the table (no alias), undo keeps the reverse order, the derived name avoids the table name', async () => {
    const [d] = await collect(
      stmts(
        entry('insert', [
          { before: null, after: [1n, 'x', null] },
          { before: null, after: [2n, 'y', '2.00'] },
        ]),
        'undo',
      ),
    );
    expect(sqlOf(d)).toBe(
      'DELETE `s`.`t` FROM (WITH tidemark_v(k0,c0,c1) AS (VALUES /* key: k0 = `id`; held: c0 = `v`, c1 = `n` */ ' +
        '(NULL,(SELECT `v` FROM `s`.`t` WHERE 0),NULL),\n' +
        "(2,'y',2.00),\n(1,'x',NULL)\n) SELECT * FROM tidemark_v) tidemark_v STRAIGHT_JOIN `s`.`t` ON " +
        '`s`.`t`.`id` = tidemark_v.k0 AND `s`.`t`.`v` <=> tidemark_v.c0 AND `s`.`t`.`n` <=> tidemark_v.c1',
    );
    expect(stmtOf(d).what).toBe('undo insert of `s`.`t` (2 rows: id=2 ... id=1) at seq 100..101 of tx tx1');
    const [w] = await collect(stmts(entry('delete', [del(1n), del(2n)], { table: 'TideMark_V' })));
    expect(sqlOf(w)).toMatch(
      /^DELETE `s`.`TideMark_V` FROM \(WITH tidemark_w\(k0,c0,c1\) AS .* tidemark_w STRAIGHT_JOIN/s,
    );
  });

  it("the comment naming the constructor's columns stays one line and cannot end early or hold the delimiter", () => {
    const cols = [col('id', 'int'), col('a*/b$$c\nd', 'varchar')];
    const shape = batchShape({
      kind: 'delete',
      schemaTable: '`s`.`t`',
      tableName: 't',
      head: 'undo insert of `s`.`t`',
      describe: () => '',
      cols,
      keyIdx: [0],
      cmpIdx: [1],
      setIdx: [],
    });
    expect(shape).not.toBeNull();
    expect(columnsComment(shape!)).toBe('/* key: k0 = `id`; held: c0 = `a* /b$ $c\\x0ad` */');
  });

  it('a run of one row stays its per-row statement', async () => {
    const items = stmts(entry('delete', [del(1n)]));
    const out = await collect(items);
    expect(out).toEqual(items);
    expect(() => mergeRun([])).toThrow();
  });

  it('a key appears once per statement: a row changed twice splits the run', async () => {
    const e = entry('update', [upd(1n, 'a', 'b'), upd(2n, 'a', 'b'), upd(1n, 'b', 'c'), upd(3n, 'a', 'b')]);
    const out = await collect(stmts(e));
    expect(out.map((x) => stmtOf(x).expect)).toEqual([2, 2]);
    expect(stmtOf(out[1]).rows?.map((r) => r.seq)).toEqual([102n, 103n]);
  });

  it('anything else ends the run first, so statements keep their order', async () => {
    const items = [
      ...stmts(entry('delete', [del(1n), del(2n)])),
      ...stmts(entry('insert', [{ before: null, after: [9n, 'i', null] }])),
      ...stmts(entry('delete', [del(3n), del(4n)], { seq: 200n })),
      ...stmts(entry('delete', [del(5n), del(6n)], { table: 'other', seq: 300n })),
      // A key move and a no-op update stay per-row.
      ...stmts(entry('update', [{ before: [7n, 'a', null], after: [8n, 'a', null] }], { seq: 400n })),
      ...stmts(entry('update', [{ before: [7n, 'a', null], after: [7n, 'a', null] }], { seq: 500n })),
      // Bytes in a text column would change the constructor column's type.
      ...stmts(entry('delete', [del(10n), del(11n, new Uint8Array([1])), del(12n)], { seq: 600n })),
    ];
    const out = await collect(items);
    expect(out.map((x) => `${stmtOf(x).kind}:${stmtOf(x).expect}:${stmtOf(x).seq}`)).toEqual([
      'delete:2:100',
      'insert:1:100',
      'delete:2:200',
      'delete:2:300',
      'update:1:400',
      'update:1:500',
      'delete:1:600',
      'delete:1:601',
      'delete:1:602',
    ]);
  });

  it('consecutive entries of one table merge (a large change arrives in many rows events)', async () => {
    const items = [
      ...stmts(entry('delete', [del(1n), del(2n)])),
      ...stmts(entry('delete', [del(3n), del(4n)], { seq: 102n })),
    ];
    const out = await collect(items);
    expect(out).toHaveLength(1);
    expect(stmtOf(out[0]).what).toBe('redo delete of `s`.`t` (4 rows: id=1 ... id=4) at seq 100..103 of tx tx1');
  });

  it('bounded by rows and by bytes', async () => {
    const rows = Array.from({ length: 10 }, (_, i) => del(BigInt(i + 1), 'x'.repeat(100)));
    expect((await collect(stmts(entry('delete', rows)), { maxRows: 4 })).map((x) => stmtOf(x).expect)).toEqual([
      4, 4, 2,
    ]);
    const byBytes = await collect(stmts(entry('delete', rows)), { maxBytes: 250 });
    expect(byBytes.map((x) => stmtOf(x).expect)).toEqual([2, 2, 2, 2, 2]);
  });

  it('transactions may share a statement: their tx items come before it, or after it when none of its rows are theirs', async () => {
    const tx = (id: string): PlanItem => ({
      kind: 'tx',
      txId: id,
      commitSeq: 1n,
      commitTimeUs: 0n,
      direction: 'redo',
      rows: 1,
    });
    const out = await collect([
      tx('A'),
      ...stmts(entry('delete', [del(1n)], { txId: 'A' })),
      tx('B'),
      ...stmts(entry('delete', [del(2n)], { txId: 'B', seq: 101n })),
      tx('C'),
      ...stmts(entry('insert', [{ before: null, after: [3n, 'x', null] }], { txId: 'C', seq: 102n })),
      { kind: 'final', sql: 'UPDATE pos SET x = 1', expect: 1, what: 'position' },
    ]);
    expect(out.map((x) => (x.kind === 'tx' ? `tx ${x.txId}` : x.kind === 'stmt' ? x.stmt.kind : x.kind))).toEqual([
      'tx A',
      'tx B',
      'delete',
      'tx C',
      'insert',
      'final',
    ]);
    expect(stmtOf(out[2]).what).toBe('redo delete of `s`.`t` (2 rows: id=1 ... id=2) at seq 100..101 of tx A ... B');
  });
});

describe('rows of a multi-row statement once its text is built', () => {
  // Undo and rewind pass `reload` (the entry decoded again from its journal bytes): a merged row then keeps nothing
  // of its entry while its statement is in flight; its text is built from the entry decoded again if asked for.
  const first = entry('update', [upd(1n, 'a', 'b'), upd(2n, 'c', 'd'), upd(3n, 'e', 'f')]);
  const second = entry('update', [upd(4n, 'g', 'h'), upd(5n, 'i', 'j')], { seq: 103n });
  const plan = (dir: 'undo' | 'redo', reload?: (e: RowsEntry) => () => RowsEntry): PlanItem[] =>
    (dir === 'undo' ? [second, first] : [first, second]).flatMap((e) =>
      [...guardedStatements(e, dir, { flavor: 'mariadb', txId: e.txId, reload: reload?.(e) })].map(
        (stmt): PlanItem => ({ kind: 'stmt', stmt }),
      ),
    );
  const texts = (s: GuardedStatement) => s.rows!.map((r) => [r.seq, r.kind, r.sql, r.what]);

  for (const dir of ['undo', 'redo'] as const) {
    it(`${dir}: the per-row statements come back the same, each entry decoded again once, only when asked`, async () => {
      const expected = texts(stmtOf((await collect(plan(dir)))[0]));
      let reloads = 0;
      const merged = stmtOf(
        (
          await collect(
            plan(dir, (e) => () => {
              reloads++;
              return structuredClone(e);
            }),
          )
        )[0],
      );
      expect(merged.rows).toHaveLength(5);
      expect(merged.sql).toMatch(/^UPDATE \(WITH tidemark_v/);
      expect(reloads).toBe(0);
      expect(texts(merged)).toEqual(expected);
      expect(expected.map(([seq]) => seq)).toEqual(
        dir === 'undo' ? [104n, 103n, 102n, 101n, 100n] : [100n, 101n, 102n, 103n, 104n],
      );
      expect(reloads).toBe(2);
    });
  }

  it('without reload, released rows keep their images and build the same texts', async () => {
    const merged = stmtOf((await collect(stmts(entry('delete', [del(1n), del(2n)]), 'redo')))[0]);
    expect(merged.sql).toMatch(/^DELETE/);
    expect(merged.rows!.map((r) => r.sql)).toEqual([
      "DELETE FROM `s`.`t` WHERE `id` = 1 AND `v` <=> 'x' AND `n` <=> NULL",
      "DELETE FROM `s`.`t` WHERE `id` = 2 AND `v` <=> 'x' AND `n` <=> NULL",
    ]);
  });
});
