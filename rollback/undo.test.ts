import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { SegmentFiles } from '../journal/index.ts';
import { del, ins, LINES, ORDERS, TestJournal, upd } from '../test/fixtures/rollback-journal.ts';
import type { PlanItem } from './guard.ts';
import { RollbackIndex } from './index/index.ts';
import type { ItemContext } from './items.ts';
import { planUndo, undoAtOnce, undoItems } from './undo.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-undo-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function drain(items: AsyncIterable<PlanItem>): Promise<string[]> {
  const out: string[] = [];
  for await (const it of items)
    out.push(
      it.kind === 'stmt'
        ? it.stmt.sql
        : `${it.kind} ${JSON.stringify(it, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))}`,
    );
  return out;
}

async function withIndex<T>(fn: (ctx: ItemContext, index: RollbackIndex) => Promise<T>): Promise<T> {
  const index = await RollbackIndex.open({ journalDir: dir });
  await index.catchUp();
  const files = new SegmentFiles();
  try {
    return await fn({ index, journalDir: dir, flavor: 'mariadb', skipColumns: async () => new Set(), files }, index);
  } finally {
    await files.close();
    index.close();
  }
}

/** The bad transaction of both tests: orders 1 and 2 renamed. */
const BAD_UPDATE = upd(
  ORDERS,
  [
    [1n, 'a'],
    [1n, 'A'],
  ],
  [
    [2n, 'b'],
    [2n, 'B'],
  ],
);

/** Later work on order 3 only (not a row of BAD_UPDATE). */
const RENAME_3 = upd(ORDERS, [
  [3n, 'c'],
  [3n, 'C'],
]);

describe('undoAtOnce (nocascade in one pass)', () => {
  it('streams the same statements as planUndo + undoItems when nothing later touched the rows', async () => {
    const j = await TestJournal.open(dir);
    await j.tx([ins(ORDERS, [1n, 'a'], [2n, 'b'], [3n, 'c']), ins(LINES, [1n, 'x', 5n])]);
    const bad = await j.tx([BAD_UPDATE, del(LINES, [1n, 'x', 5n])]);
    // Later work on other rows of the same table: probed, no conflict.
    const later = await j.tx([RENAME_3]);
    await j.close();
    await withIndex(async (ctx, index) => {
      const root = index.txById(bad.txId)!;
      const plan = await planUndo(ctx, root, later.seq, 'nocascade');
      const expected = await drain(undoItems(ctx, plan));
      const once = undoAtOnce(ctx, root, later.seq);
      expect(once.plan.rows).toBe(plan.rows);
      expect(await drain(once.items)).toEqual(expected);
      expect(expected.filter((s) => !s.startsWith('tx '))).toHaveLength(3);
    });
  });

  it('a conflict stops the statements and is refused at the end with the same error as planUndo', async () => {
    const j = await TestJournal.open(dir);
    await j.tx([ins(ORDERS, [1n, 'a'], [2n, 'b'])]);
    const bad = await j.tx([BAD_UPDATE]);
    const later = await j.tx([
      upd(ORDERS, [
        [2n, 'B'],
        [2n, 'BB'],
      ]),
    ]);
    await j.close();
    await withIndex(async (ctx, index) => {
      const root = index.txById(bad.txId)!;
      const planned = await planUndo(ctx, root, later.seq, 'nocascade').catch((e: unknown) => e);
      expect(planned).toBeInstanceOf(TidemarkError);
      expect((planned as TidemarkError).code).toBe('REWIND_CONFLICT');
      const seen: string[] = [];
      const err = await (async () => {
        for await (const it of undoAtOnce(ctx, root, later.seq).items) seen.push(it.kind);
      })().catch((e: unknown) => e);
      expect((err as TidemarkError).code).toBe('REWIND_CONFLICT');
      expect((err as TidemarkError).message).toBe((planned as TidemarkError).message);
      expect(seen).not.toContain('stmt');
    });
  });

  it('refuses what planUndo refuses before anything streams: a transaction the server does not hold yet', async () => {
    const j = await TestJournal.open(dir);
    const a = await j.tx([ins(ORDERS, [1n, 'a'])]);
    const b = await j.tx([
      upd(ORDERS, [
        [1n, 'a'],
        [1n, 'b'],
      ]),
    ]);
    await j.close();
    await withIndex(async (ctx, index) => {
      expect(() => undoAtOnce(ctx, index.txById(b.txId)!, a.seq)).toThrow(/not applied on this server yet/);
    });
  });
});

describe('planUndo', () => {
  it('counts the rows of a table no later transaction changed from the index, without reading them', async () => {
    const j = await TestJournal.open(dir);
    await j.tx([ins(ORDERS, [1n, 'a'], [2n, 'b'], [3n, 'c']), ins(LINES, [1n, 'x', 5n], [2n, 'y', 6n])]);
    const onLines = await j.tx([del(LINES, [1n, 'x', 5n], [2n, 'y', 6n])]);
    const onOrders = await j.tx([BAD_UPDATE]);
    const later = await j.tx([RENAME_3]);
    await j.close();
    await withIndex(async (ctx, index) => {
      // The journal out of reach: whatever must be read fails.
      const files = new SegmentFiles();
      const blind: ItemContext = { ...ctx, journalDir: join(dir, 'gone'), files };
      try {
        const plan = await planUndo(blind, index.txById(onLines.txId)!, later.seq, 'nocascade');
        expect(plan.rows).toBe(2);
        expect((await planUndo(ctx, index.txById(onLines.txId)!, later.seq, 'nocascade')).rows).toBe(2);
        // ORDERS changed later: its rows are read for their keys (and then have no conflict).
        await expect(planUndo(blind, index.txById(onOrders.txId)!, later.seq, 'nocascade')).rejects.toThrow();
        expect((await planUndo(ctx, index.txById(onOrders.txId)!, later.seq, 'nocascade')).rows).toBe(2);
        // A --table filter reads the rows it names.
        await expect(
          planUndo(blind, index.txById(onLines.txId)!, later.seq, 'nocascade', { table: 'shop.lines' }),
        ).rejects.toThrow();
      } finally {
        await files.close();
      }
    });
  });
});
