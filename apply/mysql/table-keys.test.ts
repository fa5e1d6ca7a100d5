import { describe, expect, it } from 'vitest';
import { rowsEntry } from '../../test/fixtures/rows-entry.ts';
import { fkComponents, foreignKeyLinksSql, parseFkLinks, parseTableKeys, uniqueKeysSql } from './table-keys.ts';
import { tableId, writesetOf } from './writeset.ts';

const link = (cs: string, ct: string, ps: string, pt: string) => ({ cs, ct, ps, pt });

describe('table keys for writesets', () => {
  it('quotes names in the SQL', () => {
    expect(uniqueKeysSql("d'b", 't')).toContain("TABLE_SCHEMA = 'd\\'b'");
    expect(foreignKeyLinksSql()).toContain('REFERENCED_TABLE_NAME IS NOT NULL');
  });

  it('groups unique-key columns by index, in order', () => {
    const k = parseTableKeys(
      'db',
      'u',
      [
        { name: 'PRIMARY', col: 'id', sub_part: null },
        { name: 'uq', col: 'a', sub_part: null },
        { name: 'uq', col: 'b', sub_part: null },
      ],
      new Map(),
    );
    expect(k.unique).toEqual([
      { name: 'PRIMARY', columns: ['id'] },
      { name: 'uq', columns: ['a', 'b'] },
    ]);
    expect(k.fkTables).toEqual([]);
    expect(k.wholeTable).toBeUndefined();
  });

  it('a prefix unique key takes the table whole', () => {
    const k = parseTableKeys('db', 'u', [{ name: 'e', col: 'email', sub_part: 10 }], new Map());
    expect(k.wholeTable).toBe(true);
    const w = writesetOf(
      [rowsEntry('u', 'insert', ['id', 'email'], ['id'], [{ before: null, after: [1n, 'a'] }])],
      () => k,
    );
    expect(w.rows.size).toBe(0);
    expect(w.tables).toEqual(new Set([tableId('db', 'u')]));
  });

  it('links are the whole component, both directions, transitively, itself included', () => {
    const comps = fkComponents(
      parseFkLinks([
        link('db', 'orders', 'db', 'users'),
        link('db2', 'lines', 'db', 'orders'),
        link('db', 'x', 'db', 'y'),
      ]),
    );
    const names = (s: string, t: string) =>
      (comps.get(JSON.stringify([s, t])) ?? []).map((r) => `${r.schema}.${r.table}`).sort();
    expect(names('db', 'users')).toEqual(['db.orders', 'db.users', 'db2.lines']);
    expect(names('db2', 'lines')).toEqual(['db.orders', 'db.users', 'db2.lines']);
    expect(names('db', 'x')).toEqual(['db.x', 'db.y']);
    expect(names('db', 'other')).toEqual([]);
    // A chain is one component from either end.
    const chain = fkComponents(
      parseFkLinks([link('c', 'a', 'c', 'b'), link('c', 'b', 'c', 'c'), link('c', 'c', 'c', 'd')]),
    );
    expect(chain.get(JSON.stringify(['c', 'a']))?.length).toBe(4);
    expect(chain.get(JSON.stringify(['c', 'd']))?.length).toBe(4);
    // A self-reference links the table to itself.
    expect(fkComponents(parseFkLinks([link('db', 't', 'db', 't')])).get(JSON.stringify(['db', 't']))).toEqual([
      { schema: 'db', table: 't' },
    ]);
  });
});
