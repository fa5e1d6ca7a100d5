import { describe, expect, it } from 'vitest';
import { describeFk, FkIndex, parseCascadingFks } from './fk.ts';

const rows = [
  { cs: 'fk', cn: 'child_parent', child: 'child', ps: 'fk', pt: 'parent', pc: 'a', del: 'CASCADE', upd: 'CASCADE' },
  { cs: 'fk', cn: 'child_parent', child: 'child', ps: 'fk', pt: 'parent', pc: 'b', del: 'CASCADE', upd: 'CASCADE' },
  { cs: 'other', cn: 'n', child: 'nc', ps: 'fk', pt: 'parent', pc: 'a', del: 'SET NULL', upd: 'RESTRICT' },
];

describe('cascading foreign keys', () => {
  it('groups columns by constraint and keeps only cascading actions', () => {
    const fks = parseCascadingFks(rows);
    expect(fks).toHaveLength(2);
    expect(fks[0]).toMatchObject({
      schema: 'fk',
      name: 'child_parent',
      parentColumns: ['a', 'b'],
      onDelete: 'CASCADE',
    });
    expect(fks[1]).toMatchObject({ schema: 'other', childTable: 'nc', onDelete: 'SET NULL', onUpdate: null });
  });

  it('finds the constraints an operation on a parent cascades through', () => {
    const ix = new FkIndex(parseCascadingFks(rows));
    expect(ix.cascades('fk', 'parent', 'delete').map((f) => f.name)).toEqual(['child_parent', 'n']);
    expect(ix.cascades('fk', 'parent', 'update').map((f) => f.name)).toEqual(['child_parent']);
    expect(ix.cascades('fk', 'parent', 'insert')).toEqual([]);
    expect(ix.cascades('fk', 'child', 'delete')).toEqual([]);
    expect(describeFk(ix.cascades('fk', 'parent', 'delete')[1]!, 'delete')).toBe(
      'other.nc.n (fk.parent → other.nc, ON DELETE SET NULL)',
    );
  });
});
