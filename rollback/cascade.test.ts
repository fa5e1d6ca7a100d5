import { describe, expect, it } from 'vitest';
import { FkIndex, parseCascadingFks } from '../apply/mysql/fk.ts';
import type { RowsEntry, Value } from '../record/record.ts';
import { cascadeError, cascadingRow } from './cascade.ts';
import type { TxInfo } from './index/index.ts';

const fks = new FkIndex(
  parseCascadingFks([
    {
      cs: 'fk',
      cn: 'child_parent',
      child: 'child',
      ps: 'fk',
      pt: 'parent',
      pc: 'code',
      del: 'CASCADE',
      upd: 'SET NULL',
    },
  ]),
);

function entry(
  op: RowsEntry['op'],
  rows: [Value[] | null, Value[] | null][],
  over: Partial<RowsEntry> = {},
): RowsEntry {
  return {
    kind: 'rows',
    source: 's',
    seq: 10n,
    txId: '0-1-5',
    schema: 'fk',
    table: 'parent',
    op,
    columns: [
      { name: 'id', type: 'int' },
      { name: 'CODE', type: 'varchar' },
      { name: 'name', type: 'varchar' },
    ],
    pk: ['id'],
    rows: rows.map(([before, after]) => ({ before, after })),
    ...over,
  };
}

describe('which undone rows cascaded through a foreign key', () => {
  it('a delete of a parent row with its referenced columns set', () => {
    const e = entry('delete', [
      [[1n, null, 'a'], null],
      [[2n, 'x', 'b'], null],
    ]);
    expect(cascadingRow(fks, e)?.row).toBe(1);
    expect(cascadingRow(fks, e, 0, 1)).toBeNull();
    expect(cascadingRow(fks, { ...e, fkChecksOff: true })).toBeNull();
    expect(cascadingRow(fks, { ...e, table: 'other' })).toBeNull();
  });

  it('an update only when it changed a referenced column', () => {
    const e = entry('update', [
      [
        [1n, 'x', 'a'],
        [1n, 'x', 'renamed'],
      ],
      [
        [2n, 'y', 'b'],
        [2n, 'z', 'b'],
      ],
    ]);
    expect(cascadingRow(fks, e)?.row).toBe(1);
    expect(cascadingRow(fks, entry('insert', [[null, [1n, 'x', 'a']]]))).toBeNull();
  });

  it('names the constraint, the row and the way out', () => {
    const e = entry('delete', [[[7n, 'x', 'a'], null]]);
    const tx = { txId: '0-1-5', firstSeq: 10n, commitSeq: 11n, commitTimeUs: 0n } as TxInfo;
    const err = cascadeError('undo', tx, e, cascadingRow(fks, e)!, 'target replica');
    expect(err.message).toMatch(
      /^cannot undo transaction 0-1-5 .*: its delete of fk\.parent \(id=7, seq 10\) cascades through foreign key fk\.child\.child_parent \(fk\.parent → fk\.child, ON DELETE CASCADE\) on target replica\. .*Nothing was changed\. .*tidemark restore/,
    );
    expect(err.code).toBe('REWIND_FK_CASCADE');
  });
});
