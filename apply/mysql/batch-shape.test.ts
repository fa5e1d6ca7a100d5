import { describe, expect, it } from 'vitest';
import type { Column, RowsEntry } from '../../record/record.ts';
import { ShapeCache } from './batch-shape.ts';

const cols = (): Column[] => [
  { name: 'id', type: 'int' },
  { name: 'v', type: 'varchar', columnType: 'varchar(20)' },
];

const entry = (over: Partial<RowsEntry> = {}): RowsEntry => ({
  kind: 'rows',
  source: 'src',
  seq: 1n,
  txId: 't',
  schema: 's',
  table: 't',
  op: 'update',
  columns: cols(),
  pk: ['id'],
  rows: [{ before: [1n, 'a'], after: [1n, 'b'] }],
  ...over,
});

describe('ShapeCache', () => {
  const none: ReadonlySet<string> = new Set();

  it('reuses the shape of an entry of the same layout (new column objects, other rows)', () => {
    const c = new ShapeCache({ noPrimaryKey: 'full-row', flavor: 'mariadb' });
    const a = c.shapeOf(entry(), none, null);
    const b = c.shapeOf(entry({ seq: 9n, rows: [{ before: [2n, 'x'], after: [2n, 'y'] }] }), none, null);
    expect(b).toBe(a);
  });

  it('builds a new shape when anything the SQL depends on differs', () => {
    const c = new ShapeCache({ noPrimaryKey: 'full-row', flavor: 'mariadb' });
    const base = c.shapeOf(entry(), none, null);
    const variants: [string, () => ReturnType<ShapeCache['shapeOf']>][] = [
      ['column type', () => c.shapeOf(entry({ columns: [cols()[0]!, { name: 'v', type: 'text' }] }), none, null)],
      [
        'full type',
        () => c.shapeOf(entry({ columns: [cols()[0]!, { ...cols()[1]!, columnType: 'varchar(30)' }] }), none, null),
      ],
      [
        'signedness',
        () => c.shapeOf(entry({ columns: [{ name: 'id', type: 'int', unsigned: true }, cols()[1]!] }), none, null),
      ],
      ['column count', () => c.shapeOf(entry({ columns: [...cols(), { name: 'w', type: 'int' }] }), none, null)],
      ['key', () => c.shapeOf(entry({ pk: ['v'] }), none, null)],
      ['fk mode', () => c.shapeOf(entry({ fkChecksOff: true }), none, null)],
      ['skip set', () => c.shapeOf(entry(), new Set(['v']), null)],
      ['table', () => c.shapeOf(entry({ table: 'u' }), none, null)],
      ['operation', () => c.shapeOf(entry({ op: 'delete', rows: [{ before: [1n, 'a'], after: null }] }), none, null)],
    ];
    for (const [what, make] of variants) {
      const s = make();
      expect(s, what).not.toBe(base);
      // …and the variant's own shape is right for it, not the cached one's (the signature, which decides what
      // shares a statement, leaves signedness out: values are written the same either way).
      if (what !== 'signedness') expect(s.sig, what).not.toBe(base.sig);
      // Back to the first layout: a fresh shape equal to the first.
      const again = c.shapeOf(entry(), none, null);
      expect(again.sig, what).toBe(base.sig);
    }
  });

  it("writes the new column's name after a column was renamed", () => {
    const c = new ShapeCache({ noPrimaryKey: 'full-row', flavor: 'mariadb' });
    c.shapeOf(entry({ op: 'insert', rows: [{ before: null, after: [1n, 'a'] }] }), none, null);
    const renamed = c.shapeOf(
      entry({
        op: 'insert',
        columns: [cols()[0]!, { ...cols()[1]!, name: 'w' }],
        rows: [{ before: null, after: [1n, 'a'] }],
      }),
      none,
      null,
    );
    expect(renamed.head).toContain('`w`');
    expect(renamed.head).not.toContain('`v`');
  });
});
