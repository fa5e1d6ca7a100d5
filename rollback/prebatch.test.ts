/**
 * Issue #15 (undo speed): multi-row statements merged while the plan is produced (ItemContext.batch, Batcher),
 * and the per-row fallback that names the one conflicting row of such a statement.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SegmentFiles } from '../journal/index.ts';
import type { Column, RowsEntry } from '../record/record.ts';
import { del, ins, LINES, ORDERS, TestJournal, upd } from '../test/fixtures/rollback-journal.ts';
import { Batcher, batchItems } from './batch.ts';
import { executePlan, type PlanConnection } from './execute.ts';
import { GuardError, type GuardedStatement, guardedStatements, type PlanItem } from './guard.ts';
import { RollbackIndex } from './index/index.ts';
import { type ItemContext, forwardItems, rewindItems } from './items.ts';
import { planUndo, undoAtOnce, undoItems } from './undo.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-prebatch-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const COLS: Column[] = [
  { name: 'id', type: 'int' },
  { name: 'v', type: 'varchar' },
];
/** Five deletes of s.t (id, v) at seq 10..14 of tx1. */
const DELS: RowsEntry = Object.assign(
  { kind: 'rows', source: 'src', seq: 10n, txId: 'tx1', schema: 's', table: 't' } as const,
  { op: 'delete', columns: COLS, pk: ['id'] } as const,
  { rows: [1n, 2n, 3n, 4n, 5n].map((id) => ({ before: [id, `x${id}`], after: null })) },
);

function merged(e: RowsEntry): GuardedStatement {
  const b = new Batcher();
  const out: PlanItem[] = [];
  for (const stmt of guardedStatements(e, 'redo', { flavor: 'mariadb', txId: e.txId }))
    b.push({ kind: 'stmt', stmt }, out);
  b.end(out);
  expect(out).toHaveLength(1);
  const it = out[0]!;
  if (it.kind !== 'stmt') throw new Error('not a statement');
  return it.stmt;
}

/** A fake server that answers by statement text (see execute.test.ts). */
class FakeConn {
  readonly queries: string[] = [];
  readonly config = { clientFlags: 0x2 | 0x10000 };
  readonly rows: (sql: string) => number;
  constructor(rows: (sql: string) => number) {
    this.rows = rows;
  }
  query = async (sql: string): Promise<[unknown, unknown]> => {
    this.queries.push(sql);
    const parts = sql.split(';\n');
    const out = parts.map((p) => ({ affectedRows: /^(SAVEPOINT|ROLLBACK|START|COMMIT)/.test(p) ? 0 : this.rows(p) }));
    return [parts.length === 1 ? out[0] : out, undefined];
  };
}

describe('executePlan of statements merged by a Batcher', () => {
  async function* rows(): AsyncGenerator<PlanItem> {
    yield { kind: 'stmt', stmt: merged(DELS) };
  }
  const isBatch = (sql: string) => sql.startsWith('DELETE `s`.`t` FROM (WITH');

  it('one statement for the run, its count checked', async () => {
    const c = new FakeConn((sql) => (isBatch(sql) ? 5 : 1));
    expect(await executePlan(c as unknown as PlanConnection, rows())).toEqual({ statements: 1, rows: 5, txs: 0 });
    expect(c.queries.filter((q) => q.includes('ROLLBACK'))).toEqual([]);
  });

  it('a batch with one conflicting row: rolled back to its savepoint, the per-row statements name exactly that row', async () => {
    // Row id=4 was changed behind tidemark's back: the batch matches 4 of 5, the row alone matches nothing.
    const c = new FakeConn((sql) => (isBatch(sql) ? 4 : sql.includes('`id` = 4 ') ? 0 : 1));
    const err = await executePlan(c as unknown as PlanConnection, rows()).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).message).toBe(
      'guard failed: redo delete of `s`.`t` (id=4) at seq 13 of tx tx1: the row is not in the state the journal says (changed or removed since); rolled back, nothing was changed',
    );
    expect((err as GuardError).context).toMatchObject({ seq: 13n, expected: 1, matched: 0 });
    const replay = c.queries[c.queries.indexOf('ROLLBACK TO SAVEPOINT tidemark_rewind') + 1]!;
    expect(replay.split(';\n').map((q) => q.replace(/ AND .*/, ''))).toEqual([
      'SAVEPOINT tidemark_rewind',
      ...[1, 2, 3, 4, 5].map((id) => `DELETE FROM \`s\`.\`t\` WHERE \`id\` = ${id}`),
    ]);
    expect(c.queries.at(-1)).toBe('ROLLBACK');
  });

  it('its SQL is built once, when first used', () => {
    const s = merged(DELS);
    expect(s.what).toBe('redo delete of `s`.`t` (5 rows: id=1 ... id=5) at seq 10..14 of tx tx1');
    expect(s.sql).toBe(s.sql);
    expect(s.sql).toMatch(
      /^DELETE `s`.`t` FROM \(WITH tidemark_v\(k0,c0\) AS \(VALUES .*\(1,'x1'\),\n.*\(5,'x5'\)\n\)/s,
    );
  });
});

async function drain(items: AsyncIterable<PlanItem>): Promise<string[]> {
  const out: string[] = [];
  for await (const it of items)
    out.push(
      it.kind === 'stmt'
        ? `${it.stmt.expect} ${it.stmt.what} ${it.stmt.sql}`
        : `${it.kind} ${JSON.stringify(it, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))}`,
    );
  return out;
}

async function withCtx<T>(fn: (plain: ItemContext, batched: ItemContext, index: RollbackIndex) => Promise<T>) {
  const index = await RollbackIndex.open({ journalDir: dir });
  await index.catchUp();
  const files = new SegmentFiles();
  try {
    const plain: ItemContext = { index, journalDir: dir, flavor: 'mariadb', skipColumns: async () => new Set(), files };
    return await fn(plain, { ...plain, batch: {} }, index);
  } finally {
    await files.close();
    index.close();
  }
}

describe('merging while producing (ItemContext.batch)', () => {
  it('undo, rewind and forward produce what batchItems would make of their row-by-row streams', async () => {
    const j = await TestJournal.open(dir);
    await j.tx([ins(ORDERS, [1n, 'a'], [2n, 'b'], [3n, 'c'], [4n, 'd']), ins(LINES, [1n, 'x', 5n])]);
    const bad = await j.tx([
      upd(
        ORDERS,
        [
          [1n, 'a'],
          [1n, 'A'],
        ],
        [
          [2n, 'b'],
          [2n, 'B'],
        ],
      ),
      upd(ORDERS, [
        [3n, 'c'],
        [3n, 'C'],
      ]),
      del(LINES, [1n, 'x', 5n]),
      del(ORDERS, [4n, 'd']),
    ]);
    const small = await j.tx([
      upd(ORDERS, [
        [1n, 'A'],
        [1n, 'AA'],
      ]),
    ]);
    const last = await j.tx([
      upd(ORDERS, [
        [2n, 'B'],
        [2n, 'BB'],
      ]),
    ]);
    await j.close();
    await withCtx(async (plain, batched, index) => {
      const root = index.txById(bad.txId)!;
      const plan = await planUndo(plain, root, bad.seq, 'nocascade');
      const want = await drain(batchItems(undoItems(plain, plan)));
      expect(await drain(undoItems(batched, plan))).toEqual(want);
      expect(await drain(undoAtOnce(batched, root, bad.seq).items)).toEqual(want);
      // Four update rows of orders in two entries: one statement; the delete of a line alone.
      expect(want.filter((s) => /^\d+ /.test(s)).map((s) => s.split(' ')[0])).toEqual(['1', '1', '3']);
      const lo = root.firstSeq - 1n;
      expect(await drain(rewindItems(batched, lo, last.seq))).toEqual(
        await drain(batchItems(rewindItems(plain, lo, last.seq))),
      );
      expect(await drain(forwardItems(batched, lo, last.seq))).toEqual(
        await drain(batchItems(forwardItems(plain, lo, last.seq))),
      );
      // Transactions share a statement: the last two each change one row of orders.
      const rewound = await drain(rewindItems(batched, small.seq - 2n, last.seq));
      expect(rewound.filter((s) => s.startsWith('tx ')).length).toBe(2);
      expect(rewound.filter((s) => /^\d+ /.test(s)).map((s) => s.split(' ')[0])).toEqual(['2']);
    });
  });
});
