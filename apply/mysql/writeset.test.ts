import { describe, expect, it } from 'vitest';
import type { DdlEntry, RowsEntry, Value } from '../../record/record.ts';
import { rowsEntry } from '../../test/fixtures/rows-entry.ts';
import { foldKeyValue, type KeyLookup, tableId, type TableKeys, writesetOf, writesetsMeet } from './writeset.ts';

const cols = ['id', 'email', 'v'];

function rows(
  table: string,
  op: RowsEntry['op'],
  images: [readonly Value[] | null, readonly Value[] | null][],
  pk = ['id'],
): RowsEntry {
  return rowsEntry(
    table,
    op,
    cols,
    pk,
    images.map(([before, after]) => ({ before, after })),
  );
}

const users: TableKeys = {
  unique: [
    { name: 'PRIMARY', columns: ['id'] },
    { name: 'email', columns: ['email'] },
  ],
};
const meta: Record<string, TableKeys> = {
  users,
  orders: { unique: [{ name: 'PRIMARY', columns: ['id'] }], fkTables: [{ schema: 'db', table: 'users' }] },
  nokey: { unique: [] },
  gen: { unique: [{ name: 'g', columns: ['not_in_image'] }] },
};
const keys: KeyLookup = (_s, t) => meta[t];

const meet = writesetsMeet;

describe('writesetOf', () => {
  it('has one item per key and image; transactions on other keys do not meet', () => {
    const a = writesetOf([rows('users', 'insert', [[null, [1n, 'a@x', 1n]]])], keys);
    const b = writesetOf([rows('users', 'insert', [[null, [2n, 'b@x', 1n]]])], keys);
    // PRIMARY, email, and the source's primary key.
    expect(a.rows.size).toBe(3);
    expect(a.barrier).toBeNull();
    expect(meet(a, b)).toBe(false);
  });

  it('an update that moves a key touches the old and the new key', () => {
    const move = writesetOf(
      [
        rows('users', 'update', [
          [
            [1n, 'a@x', 1n],
            [5n, 'e@x', 1n],
          ],
        ]),
      ],
      keys,
    );
    const old = writesetOf([rows('users', 'delete', [[[1n, 'z@x', 1n], null]])], keys);
    const neu = writesetOf([rows('users', 'insert', [[null, [5n, 'q@x', 1n]]])], keys);
    const other = writesetOf([rows('users', 'insert', [[null, [6n, 'f@x', 1n]]])], keys);
    expect(meet(move, old)).toBe(true);
    expect(meet(move, neu)).toBe(true);
    expect(meet(move, other)).toBe(false);
  });

  it('a unique key alone makes two transactions meet (delete frees an e-mail another insert takes)', () => {
    const del = writesetOf([rows('users', 'delete', [[[1n, 'a@x', 1n], null]])], keys);
    const ins = writesetOf([rows('users', 'insert', [[null, [9n, 'A@X ', 1n]]])], keys);
    expect(meet(del, ins)).toBe(true);
  });

  it('a NULL in a unique key is no conflict on that key', () => {
    const a = writesetOf([rows('users', 'insert', [[null, [1n, null, 1n]]])], keys);
    const b = writesetOf([rows('users', 'insert', [[null, [2n, null, 1n]]])], keys);
    expect(a.rows.size).toBe(2);
    expect(meet(a, b)).toBe(false);
  });

  it('a table with a foreign key takes the linked table whole', () => {
    const order = writesetOf([rows('orders', 'insert', [[null, [1n, 'o', 7n]]])], keys);
    const user = writesetOf(
      [
        rows('users', 'update', [
          [
            [7n, 'u@x', 1n],
            [7n, 'u@x', 2n],
          ],
        ]),
      ],
      keys,
    );
    expect(order.tables).toEqual(new Set([tableId('db', 'users')]));
    expect(meet(order, user)).toBe(true);
  });

  it('a table without any key is taken whole: transactions touching it conflict, others do not', () => {
    const log = writesetOf([rows('nokey', 'insert', [[null, [1n, 'a', 1n]]], [])], keys);
    expect(log.barrier).toBeNull();
    expect(log.tables).toEqual(new Set([tableId('db', 'nokey')]));
    expect(meet(log, writesetOf([rows('nokey', 'insert', [[null, [2n, 'b', 2n]]], [])], keys))).toBe(true);
    expect(meet(log, writesetOf([rows('users', 'insert', [[null, [1n, 'a', 1n]]])], keys))).toBe(false);
  });

  it('DDL and an unknown table are barriers', () => {
    const ddl: DdlEntry = { kind: 'ddl', source: 's', seq: 1n, txId: 't', schema: 'db', tables: [], sql: 'TRUNCATE x' };
    expect(writesetOf([ddl], keys).barrier).toMatch(/DDL/);
    expect(writesetOf([rows('missing', 'insert', [[null, [1n, 'a', 1n]]])], keys).barrier).toMatch(/no key metadata/);
    // A barrier stays one whatever follows, and holds no items.
    const w = writesetOf([ddl, rows('users', 'insert', [[null, [1n, 'a', 1n]]])], keys);
    expect(w.barrier).not.toBeNull();
    expect(w.rows.size + w.tables.size).toBe(0);
  });

  it('a key column the image lacks takes the table whole', () => {
    const w = writesetOf([rows('gen', 'insert', [[null, [1n, 'a', 1n]]])], keys);
    expect(w.rows.size).toBe(0);
    expect(w.tables).toEqual(new Set([tableId('db', 'gen')]));
  });

  it('a transaction over maxRowKeys takes its tables whole', () => {
    const many = rows(
      'users',
      'insert',
      Array.from({ length: 20 }, (_, i): [null, Value[]] => [null, [BigInt(i), `${i}@x`, 0n]]),
    );
    const w = writesetOf([many, rows('orders', 'insert', [[null, [1n, 'o', 1n]]])], keys, 10);
    expect(w.rows.size).toBe(0);
    expect(w.tables).toEqual(new Set([tableId('db', 'users'), tableId('db', 'orders')]));
  });

  it('folds strings coarser than case-, accent- and pad-insensitive collations, keeps types apart', () => {
    expect(foldKeyValue('Éa  ')).toBe(foldKeyValue('ea'));
    expect(foldKeyValue('1')).not.toBe(foldKeyValue(1n));
    expect(foldKeyValue(new Uint8Array([0x41]))).not.toBe(foldKeyValue(new Uint8Array([0x61])));
    expect(foldKeyValue(-0)).toBe(foldKeyValue(0));
  });
});
