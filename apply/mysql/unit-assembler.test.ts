import { describe, expect, it } from 'vitest';
import type { Column } from '../../record/record.ts';
import { JournalBuilder, type TableDef } from '../../test/fixtures/apply-kit.ts';
import { UnitAssembler } from './unit-assembler.ts';

const col = (name: string, type: string): Column => ({ name, type });
const T: TableDef = { schema: 'db', table: 't', pk: ['id'], columns: [col('id', 'int')] };

describe('UnitAssembler', () => {
  it('collects whole transactions only; a DDL or a too-big transaction goes serial with what is open', () => {
    const j = new JournalBuilder();
    j.tx((t) => t.insert(T, [[1n]]));
    j.tx((t) => t.insert(T, [[2n]]).insert(T, [[3n]]));
    j.tx((t) => t.insert(T, [[4n], [5n], [6n]]).insert(T, [[7n], [8n]]));
    j.tx((t) => t.ddl('db', 'ALTER TABLE t ADD COLUMN x INT'));
    const u = new UnitAssembler(4);
    const items = j.items;
    // Pushed until the first 'serial': transaction 3 grows to 5 rows (> 4) at its second rows entry.
    let at = 0;
    while (u.push(items[at]!, 1000 + at) === 'collected') at++;
    expect(items[at]!.entry).toMatchObject({ kind: 'rows', rows: [{}, {}] });
    expect(u.txs).toBe(2);
    expect(u.started).toBe(1001);
    expect(u.inTransaction).toBe(true);
    expect(u.takeOpen().map((it) => it.lsn)).toEqual([items[at - 1]!.lsn]);
    const draft = u.takeUnit()!;
    expect(draft.txs).toBe(2);
    expect(draft.rows).toBe(3);
    expect(draft.items.map((it) => it.lsn)).toEqual(items.slice(0, at - 1).map((it) => it.lsn));
    expect(draft.target).toMatchObject({ seq: items[at - 2]!.entry.seq, lsn: items[at - 2]!.lsn });
    // A DDL is never collected.
    const ddl = items.find((it) => it.entry.kind === 'ddl')!;
    expect(u.push(ddl, 2000)).toBe('serial');
    expect(u.takeUnit()).toBeNull();
  });
});
