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

  it('knows every parent and child of a cascading constraint, in its own schema (apply keeps their order)', () => {
    const ix = new FkIndex(parseCascadingFks(rows));
    expect(ix.involves('fk', 'parent')).toBe(true);
    expect(ix.involves('fk', 'child')).toBe(true);
    expect(ix.involves('other', 'nc')).toBe(true);
    // Names are schema-qualified: a table of the same name elsewhere is not involved.
    expect(ix.involves('fk', 'nc')).toBe(false);
    expect(ix.involves('other', 'parent')).toBe(false);
    expect(new FkIndex([]).involves('fk', 'parent')).toBe(false);
  });
});

describe('deletes that can cascade into their own table', () => {
  const fk = (child: string, parent: string, del: string) => ({
    cs: 'd',
    cn: `${child}_${parent}`,
    child,
    ps: 'd',
    pt: parent,
    pc: 'id',
    del,
    upd: 'RESTRICT',
  });

  it('finds self-references and cycles through ON DELETE CASCADE, not plain parents', () => {
    const ix = new FkIndex(
      parseCascadingFks([
        fk('emp', 'emp', 'CASCADE'),
        fk('b', 'a', 'CASCADE'),
        fk('c', 'b', 'CASCADE'),
        fk('a', 'c', 'SET NULL'),
        fk('y', 'x', 'CASCADE'),
        fk('z', 'y', 'SET NULL'),
      ]),
    );
    expect(ix.deleteReachesItself('d', 'emp')).toBe(true);
    expect(ix.deleteReachesItself('d', 'a')).toBe(true);
    expect(ix.deleteReachesItself('d', 'b')).toBe(false); // c's SET NULL into a cascades no further
    expect(ix.deleteReachesItself('d', 'x')).toBe(false);
    expect(ix.deleteReachesItself('d', 'none')).toBe(false);
  });
});
