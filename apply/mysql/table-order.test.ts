import { describe, expect, it } from 'vitest';
import type { RowsEntry } from '../../record/record.ts';
import { FkIndex, parseCascadingFks } from './fk.ts';
import { HOLD_ENTRY_ROWS, type HeldEntry, mayHold, TableOrder } from './table-order.ts';

let seq = 0n;
function held(schema: string, table: string, rows = 1): HeldEntry {
  const entry: RowsEntry = {
    kind: 'rows',
    seq: ++seq,
    txId: 't',
    schema,
    table,
    op: 'insert',
    columns: [{ name: 'id', type: 'int' }],
    pk: ['id'],
    rows: Array.from({ length: rows }, (_, i) => ({ after: [BigInt(i)] })),
  } as unknown as RowsEntry;
  return { entry, skip: new Set(), period: null };
}

const names = (hs: Iterable<HeldEntry>) => [...hs].map((h) => `${h.entry.schema}.${h.entry.table}#${h.entry.seq}`);

describe('TableOrder: a group held per table', () => {
  it('releases table after table in the order tables were first seen, each table in source order', () => {
    const o = new TableOrder(100, 1 << 20);
    const hs = [held('s', 'a'), held('s', 'b'), held('t', 'a'), held('s', 'a'), held('s', 'b'), held('t', 'a')];
    for (const h of hs) o.hold(h, 10);
    const [a1, b1, ta1, a2, b2, ta2] = hs.map((h) => `${h.entry.schema}.${h.entry.table}#${h.entry.seq}`);
    expect(names(o.release())).toEqual([a1, a2, b1, b2, ta1, ta2]);
    expect(o.empty).toBe(true);
    expect(names(o.release())).toEqual([]);
  });

  it('keeps each table in source order past the bound of tables it indexes (a table then starts a second list)', () => {
    const o = new TableOrder(1_000_000, 1 << 30);
    const hs: HeldEntry[] = [];
    for (let i = 0; i < 10_050; i++) hs.push(held('s', `t${i}`));
    const again = held('s', 't0');
    for (const h of [...hs, again]) o.hold(h, 1);
    const out = [...o.release()].map((h) => h.entry.seq);
    expect(out).toHaveLength(10_051);
    expect(out.indexOf(again.entry.seq)).toBeGreaterThan(out.indexOf(hs[0]!.entry.seq));
  });

  it('says it is full at its row bound or its byte bound, and starts over after a release or clear', () => {
    const rows = new TableOrder(5, 1 << 20);
    expect(rows.hold(held('s', 'a', 2), 1)).toBe(false);
    expect(rows.hold(held('s', 'b', 2), 1)).toBe(false);
    expect(rows.hold(held('s', 'a', 1), 1)).toBe(true);
    expect(names(rows.release())).toHaveLength(3);
    expect(rows.hold(held('s', 'a', 4), 1)).toBe(false);
    const bytes = new TableOrder(1000, 100);
    expect(bytes.hold(held('s', 'a'), 60)).toBe(false);
    expect(bytes.hold(held('s', 'a'), 40)).toBe(true);
    bytes.clear();
    expect(bytes.empty).toBe(true);
    expect(bytes.hold(held('s', 'a'), 60)).toBe(false);
    expect(names(bytes.release())).toHaveLength(1);
  });
});

describe('mayHold: which entries wait, and which go out in place', () => {
  const fks = new FkIndex(
    parseCascadingFks([
      { cs: 's', cn: 'c', child: 'child', ps: 's', pt: 'parent', pc: 'id', del: 'CASCADE', upd: null },
    ]),
  );
  it('holds small entries of plain tables only', () => {
    expect(mayHold(held('s', 'a', HOLD_ENTRY_ROWS - 1), fks)).toBe(true);
    expect(mayHold(held('s', 'a', HOLD_ENTRY_ROWS), fks)).toBe(false);
    expect(mayHold(held('s', 'parent'), fks)).toBe(false);
    expect(mayHold(held('s', 'child'), fks)).toBe(false);
    const versioned = { ...held('s', 'a'), period: { start: 'row_start', end: 'row_end' } } as unknown as HeldEntry;
    expect(mayHold(versioned, fks)).toBe(false);
  });
});
