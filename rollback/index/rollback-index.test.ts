import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RowsEntry } from '../../record/record.ts';
import { readEntryAt } from '../../journal/read-at.ts';
import { keyText } from './key.ts';
import { del, ins, LINES, LOG, ORDERS, TestJournal, upd } from '../../test/fixtures/rollback-journal.ts';
import { RollbackIndex } from './rollback-index.ts';
import { INDEX_FILE, removeIndexFiles } from './schema.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-rbindex-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const T0 = 1_700_000_000_000_000n;
const k = (...v: (bigint | string)[]) => keyText(v);

/** A small history: inserts, updates (one moves a key), a delete, DDL, an empty tx, a table without a key. */
async function history(j: TestJournal) {
  const a = await j.tx([ins(ORDERS, [1n, 'a'], [2n, 'b']), ins(LINES, [1n, 'x', 5n])], { timeUs: T0 + 10n });
  const b = await j.tx(
    [
      upd(
        ORDERS,
        [
          [1n, 'a'],
          [1n, 'a2'],
        ],
        [
          [2n, 'b'],
          [3n, 'b'],
        ],
      ),
    ],
    { timeUs: T0 + 20n },
  );
  // Commit time goes back (clock step): still ordered by commit seq.
  const c = await j.tx([del(ORDERS, [1n, 'a2']), ins(LOG, ['hello'])], { timeUs: T0 + 15n });
  const d = await j.tx(
    [{ ddl: 'ALTER TABLE orders ADD x INT', schema: 'shop', tables: [{ schema: 'shop', table: 'orders' }] }],
    { timeUs: T0 + 30n },
  );
  const e = await j.tx([], { timeUs: T0 + 40n, txId: 'empty' });
  const f = await j.tx(
    [
      upd(LINES, [
        [1n, 'x', 5n],
        [1n, 'x', 6n],
      ]),
      ins(ORDERS, [1n, 'again']),
    ],
    {
      timeUs: T0 + 50n,
    },
  );
  return { a, b, c, d, e, f };
}

describe('RollbackIndex', () => {
  it('removeIndexFiles deletes the index with its WAL and shared memory; the next open starts from nothing', async () => {
    const j = await TestJournal.open(dir);
    await history(j);
    await j.close();
    const index = await RollbackIndex.open({ journalDir: dir });
    await index.catchUp();
    const files = [INDEX_FILE, `${INDEX_FILE}-wal`, `${INDEX_FILE}-shm`];
    expect(files.filter((f) => existsSync(join(dir, f)))).toEqual(files); // open: WAL mode
    removeIndexFiles(dir); // as after a crash: the index was never closed
    expect(files.filter((f) => existsSync(join(dir, f)))).toEqual([]);
    index.close();
    const again = await RollbackIndex.open({ journalDir: dir });
    expect(again.indexedLsn).toBe(0n);
    again.close();
  });

  it('lists transactions and answers lookups', async () => {
    const j = await TestJournal.open(dir);
    const h = await history(j);
    await j.close();
    const index = await RollbackIndex.open({ journalDir: dir });
    expect(index.indexedLsn).toBe(0n);
    const head = await index.catchUp();
    expect(head).toBe(index.indexedLsn);
    const txs = index.listTxs({});
    expect(txs.map((t) => t.txId)).toEqual([h.a, h.b, h.c, h.d, h.e, h.f].map((c) => c.txId));
    const [ta, tb, tc, td, te] = txs;
    expect(ta).toMatchObject({
      firstSeq: 1n,
      commitSeq: h.a.seq,
      commitTimeUs: T0 + 10n,
      phase: 'stream',
      rows: { insert: 3, update: 0, delete: 0 },
      tables: ['shop.lines', 'shop.orders'],
      ddl: [],
      position: h.a.position,
      firstLsn: 1n,
      commitLsn: 3n,
    });
    expect(tb?.rows).toEqual({ insert: 0, update: 2, delete: 0 });
    expect(tc?.tables).toEqual(['shop.log', 'shop.orders']);
    expect(td?.ddl).toEqual([
      {
        seq: h.d.seq - 1n,
        lsn: td?.firstLsn,
        schema: 'shop',
        sql: 'ALTER TABLE orders ADD x INT',
        commitTimeUs: T0 + 30n,
        txId: h.d.txId,
      },
    ]);
    expect(te).toMatchObject({ firstSeq: h.e.seq, commitSeq: h.e.seq, tables: [], firstLsn: te?.commitLsn });

    expect(index.txById(h.c.txId)?.commitSeq).toBe(h.c.seq);
    expect(index.txById('nope')).toBeNull();
    expect(index.txByCommitSeq(h.b.seq)?.txId).toBe(h.b.txId);
    expect(index.txByCommitSeq(h.b.seq - 1n)).toBeNull();
    expect(index.txContaining(h.b.seq - 1n)?.txId).toBe(h.b.txId);
    expect(index.txContaining(1n)?.txId).toBe(h.a.txId);
    expect(index.txContaining(h.f.seq + 1n)).toBeNull();

    // Time: c (T0+15) follows b (T0+20) in commit order.
    expect(index.lastTxAtOrBefore(T0 + 9n)).toBeNull();
    expect(index.lastTxAtOrBefore(T0 + 15n)?.txId).toBe(h.c.txId);
    expect(index.lastTxAtOrBefore(T0 + 19n)?.txId).toBe(h.c.txId);
    expect(index.lastTxAtOrBefore(T0 + 20n)?.txId).toBe(h.c.txId);
    expect(index.lastTxAtOrBefore(T0 + 12n)?.txId).toBe(h.a.txId);
    expect(index.lastTxAtOrBefore(T0 + 1000n)?.txId).toBe(h.f.txId);
    index.close();
  });

  it('filters listTxs by time, seq, table, order and limit', async () => {
    const j = await TestJournal.open(dir);
    const h = await history(j);
    await j.close();
    const index = await RollbackIndex.open({ journalDir: dir });
    await index.catchUp();
    const ids = (q: Parameters<RollbackIndex['listTxs']>[0]) => index.listTxs(q).map((t) => t.txId);
    expect(ids({ sinceUs: T0 + 15n, untilUs: T0 + 30n })).toEqual([h.b.txId, h.c.txId, h.d.txId]);
    expect(ids({ sinceUs: T0 + 16n })).toEqual([h.b.txId, h.d.txId, h.e.txId, h.f.txId]);
    expect(ids({ untilUs: T0 + 15n })).toEqual([h.a.txId, h.c.txId]);
    expect(ids({ sinceUs: T0 + 51n })).toEqual([]);
    expect(ids({ untilUs: T0 })).toEqual([]);
    expect(ids({ afterSeq: h.b.seq, uptoSeq: h.d.seq })).toEqual([h.c.txId, h.d.txId]);
    expect(ids({ table: 'shop.lines' })).toEqual([h.a.txId, h.f.txId]);
    expect(ids({ table: 'shop.orders', order: 'desc', limit: 2 })).toEqual([h.f.txId, h.d.txId]);
    expect(ids({ table: 'shop.none' })).toEqual([]);
    expect([...index.iterateTxs({ order: 'desc' })].map((t) => t.txId)).toEqual(ids({}).reverse());
    // Nested iteration over the same query shape.
    const pairs: string[] = [];
    for (const t of index.iterateTxs({ limit: 2 }))
      for (const u of index.iterateTxs({ limit: 2 })) pairs.push(t.txId + u.txId);
    expect(pairs).toHaveLength(4);
    index.close();
  });

  it('lists each version of a key, under both keys when an update moves it, and reads them back', async () => {
    const j = await TestJournal.open(dir);
    const h = await history(j);
    await j.close();
    const index = await RollbackIndex.open({ journalDir: dir });
    await index.catchUp();
    const v1 = index.keyVersions('shop', 'orders', k(1n));
    expect(v1.map((v) => v.op)).toEqual(['insert', 'update', 'delete', 'insert']);
    expect(v1.map((v) => v.commitSeq)).toEqual([h.a.seq, h.b.seq, h.c.seq, h.f.seq]);
    const v2 = index.keyVersions('shop', 'orders', k(2n));
    const v3 = index.keyVersions('shop', 'orders', k(3n));
    expect(v2.map((v) => [v.op, v.row])).toEqual([
      ['insert', 1],
      ['update', 1],
    ]);
    expect(v3).toEqual([v2[1]]);
    for (const v of [...v1, ...v2]) {
      const e = (await readEntryAt(dir, v.segment, v.offset, v.lsn)) as RowsEntry;
      expect(e.kind).toBe('rows');
      expect(e.seq + BigInt(v.row)).toBe(v.seq);
      expect(e.op).toBe(v.op);
    }
    expect(index.keyVersions('shop', 'lines', k(1n, 'x')).map((v) => v.op)).toEqual(['insert', 'update']);
    expect(index.keyVersions('shop', 'orders', k(9n))).toEqual([]);
    expect(index.keyVersions('shop', 'nope', k(1n))).toEqual([]);
    expect(index.laterChanges('shop', 'orders', k(1n), v1[0]?.seq as bigint, h.c.seq)).toEqual([v1[1], v1[2]]);
    expect(index.laterChanges('shop', 'orders', k(1n), h.c.seq, h.c.seq)).toEqual([]);
    // The bulk form answers as laterChanges does, key by key, and leaves out keys without later changes.
    const after = v1[0]?.seq as bigint;
    const many = index.laterCommitsMany('shop', 'orders', [k(1n), k(9n), k(1n)], after, h.c.seq);
    expect([...many.keys()]).toEqual([k(1n)]);
    expect(many.get(k(1n))).toEqual(
      index.laterChanges('shop', 'orders', k(1n), after, h.c.seq).map((v) => v.commitSeq),
    );
    expect(index.laterCommitsMany('shop', 'nope', [k(1n)], 0n, h.c.seq).size).toBe(0);
    expect(index.primaryKey('shop', 'lines')).toEqual(['order_id', 'line']);
    expect(index.primaryKey('shop', 'log')).toEqual([]);
    expect(index.primaryKey('shop', 'nope')).toBeNull();
    expect(index.ddlBetween(0n, h.c.seq)).toEqual([]);
    expect(index.ddlBetween(h.c.seq, h.f.seq).map((d) => d.sql)).toEqual(['ALTER TABLE orders ADD x INT']);
    index.close();
  });

  it('entriesOf gives the entries of a transaction in LSN order with their places', async () => {
    const j = await TestJournal.open(dir);
    const h = await history(j);
    await j.close();
    const index = await RollbackIndex.open({ journalDir: dir });
    await index.catchUp();
    const ea = index.entriesOf(h.a.seq);
    expect(ea.map((e) => [e.kind, e.schema, e.table, e.op, e.rows, e.seq])).toEqual([
      ['rows', 'shop', 'orders', 'insert', 2, 1n],
      ['rows', 'shop', 'lines', 'insert', 1, 3n],
    ]);
    for (const e of ea) expect((await readEntryAt(dir, e.segment, e.offset, e.lsn)).seq).toBe(e.seq);
    expect(index.entriesOf(h.d.seq).map((e) => [e.kind, e.schema, e.table, e.op, e.rows])).toEqual([
      ['ddl', 'shop', 'orders', 'ddl', 0],
    ]);
    expect(index.entriesOf(h.e.seq)).toEqual([]);
    expect(index.entriesOf(12345n)).toEqual([]);
    index.close();
  });

  it('keeps up incrementally and hides a transaction until its commit is indexed', async () => {
    const j = await TestJournal.open(dir);
    const index = await RollbackIndex.open({ journalDir: dir, batchChanges: 3 });
    expect(await index.catchUp()).toBe(0n);
    const a = await j.tx([ins(ORDERS, [1n, 'a'])]);
    await j.writer.flush();
    expect(await index.catchUp()).toBe(2n);
    // An unfinished unit larger than a batch: committed in pieces but not visible.
    await j.entries(
      [
        ins(ORDERS, [2n, 'b'], [3n, 'c']),
        ins(ORDERS, [4n, 'd'], [5n, 'e']),
        upd(ORDERS, [
          [1n, 'a'],
          [1n, 'z'],
        ]),
      ],
      'big',
    );
    await j.writer.flush();
    expect(await index.catchUp()).toBe(2n);
    expect(index.listTxs({}).map((t) => t.txId)).toEqual([a.txId]);
    expect(index.keyVersions('shop', 'orders', k(2n))).toEqual([]);
    expect(index.keyVersions('shop', 'orders', k(1n))).toHaveLength(1);
    expect(index.laterChanges('shop', 'orders', k(1n), 0n, 100n)).toHaveLength(1);
    // A second process sees the same.
    const other = await RollbackIndex.open({ journalDir: dir });
    expect(other.listTxs({})).toHaveLength(1);
    const c = await j.tx([del(ORDERS, [5n, 'e'])], { txId: 'big' });
    await j.writer.flush();
    expect(await index.catchUp()).toBe(7n);
    const big = index.txById('big');
    expect(big).toMatchObject({ firstSeq: 3n, commitSeq: c.seq, rows: { insert: 4, update: 1, delete: 1 } });
    expect(index.keyVersions('shop', 'orders', k(1n)).map((v) => v.commitSeq)).toEqual([a.seq, c.seq]);
    expect(index.keyVersions('shop', 'orders', k(5n)).map((v) => v.op)).toEqual(['insert', 'delete']);
    expect(await other.catchUp()).toBe(7n);
    expect(other.listTxs({})).toEqual(index.listTxs({}));
    other.close();
    index.close();
    await j.close();
  });
});
