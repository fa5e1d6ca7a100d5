import { describe, expect, it } from 'vitest';
import type { TableShape } from './relations.ts';
import { type AddedColumnFacts, diffShapes, synthesizeDdl } from './shape-diff.ts';

const shape = (...cols: [string, string][]): TableShape => ({
  schema: 'app',
  table: 't',
  columns: cols.map(([name, columnType]) => ({ name, type: columnType, columnType })),
  pk: ['id'],
  bytea: cols.map(() => false),
});
const fact = (f: Partial<AddedColumnFacts> & { name: string; type: string }): AddedColumnFacts => ({
  notNull: false,
  missing: null,
  default: null,
  generated: false,
  identity: false,
  ...f,
});
const base = shape(['id', 'integer'], ['v', 'text']);

describe('diffShapes', () => {
  it('tells added, dropped, same and the ambiguous rest', () => {
    expect(diffShapes(base, base)).toEqual({ kind: 'same' });
    expect(diffShapes(base, shape(['id', 'integer'], ['v', 'text'], ['w', 'numeric(10,2)']))).toEqual({
      kind: 'added',
      columns: [{ name: 'w', columnType: 'numeric(10,2)' }],
    });
    expect(diffShapes(base, shape(['v', 'text']))).toEqual({ kind: 'dropped', columns: ['id'] });
    const renamed = diffShapes(base, shape(['id', 'integer'], ['v2', 'text']));
    expect(renamed.kind).toBe('inexact');
    const retyped = diffShapes(base, shape(['id', 'bigint'], ['v', 'text']));
    expect(retyped).toMatchObject({ kind: 'inexact', why: expect.stringContaining('before only: id; after only: id') });
  });
});

describe('synthesizeDdl', () => {
  const added = (name: string, columnType: string) => ({ kind: 'added' as const, columns: [{ name, columnType }] });

  it('DROP COLUMN for dropped columns, quoted', () => {
    expect(synthesizeDdl(base, { kind: 'dropped', columns: ['a"b', 'c'] }, [])).toEqual({
      sql: ['ALTER TABLE "app"."t" DROP COLUMN "a""b", DROP COLUMN "c"'],
    });
  });

  it('ADD COLUMN: nullable without default; the stored missing value and default; NOT NULL', () => {
    expect(synthesizeDdl(base, added('w', 'text'), [fact({ name: 'w', type: 'text' })])).toEqual({
      sql: ['ALTER TABLE "app"."t" ADD COLUMN "w" text'],
    });
    const ts = 'timestamp with time zone';
    const now = fact({ name: 'z', type: ts, missing: '{"2026-12-06 16:22:22.869076+00"}', default: 'now()' });
    expect(synthesizeDdl(base, added('z', ts), [now])).toEqual({
      sql: [
        `ALTER TABLE "app"."t" ADD COLUMN "z" ${ts} DEFAULT ('{"2026-12-06 16:22:22.869076+00"}'::${ts}[])[1]`,
        'ALTER TABLE "app"."t" ALTER COLUMN "z" SET DEFAULT now()',
      ],
    });
    const nn = fact({ name: 'n', type: 'integer', missing: '{0}', notNull: true });
    expect(synthesizeDdl(base, added('n', 'integer'), [nn])).toEqual({
      sql: [
        `ALTER TABLE "app"."t" ADD COLUMN "n" integer DEFAULT ('{0}'::integer[])[1] NOT NULL`,
        'ALTER TABLE "app"."t" ALTER COLUMN "n" DROP DEFAULT',
      ],
    });
  });

  it('refuses what it cannot replay exactly', () => {
    const why = (f: AddedColumnFacts[], c = added('w', 'integer')) => {
      const r = synthesizeDdl(base, c, f);
      return 'why' in r ? r.why : 'exact';
    };
    expect(why([])).toContain('gone from the catalog');
    expect(why([fact({ name: 'w', type: 'bigint' })])).toContain('bigint in the catalog, integer in the stream');
    expect(why([fact({ name: 'w', type: 'integer', identity: true })])).toContain('identity');
    expect(why([fact({ name: 'w', type: 'integer', default: 'random()' })])).toContain('no stored value');
    expect(why([fact({ name: 'w', type: 'integer[]', missing: '{{1}}' })], added('w', 'integer[]'))).toContain('array');
  });
});
