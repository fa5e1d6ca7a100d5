import { describe, expect, it } from 'vitest';
import type { TidemarkError } from '../../core/errors.ts';
import type { Column } from '../../record/record.ts';
import { buildStatements, paramOf, paramsOf, type TargetTable } from './statements.ts';

const table: TargetTable = {
  schema: 'App',
  table: 'or"ders',
  columns: [
    { name: 'id', type: 'integer' },
    { name: 'ts', type: 'timestamp(6) without time zone' },
    { name: 'amt', type: 'numeric(38,10)' },
    { name: 'tags', type: 'integer[]' },
    { name: 'extra', type: 'text' },
  ],
  pk: ['id'],
};
const cols = (...names: string[]): Column[] => names.map((name) => ({ name, type: 'x' }));

describe('PostgreSQL apply statements', () => {
  it('casts every text parameter to the target column type and quotes every identifier', () => {
    const s = buildStatements(table, cols('id', 'ts', 'amt', 'tags'));
    expect(s.insert.sql).toBe(
      'INSERT INTO "App"."or""ders" ("id", "ts", "amt", "tags") VALUES ($1::integer, $2::timestamp(6) without time zone, $3::numeric(38,10), $4::integer[])',
    );
    expect(s.upsert.sql).toBe(
      `${s.insert.sql} ON CONFLICT ("id") DO UPDATE SET "ts" = EXCLUDED."ts", "amt" = EXCLUDED."amt", "tags" = EXCLUDED."tags"`,
    );
    expect(s.update.sql).toBe(
      'UPDATE "App"."or""ders" SET "id" = $1::integer, "ts" = $2::timestamp(6) without time zone, "amt" = $3::numeric(38,10), "tags" = $4::integer[] WHERE "id" = $5::integer',
    );
    expect(s.delete.sql).toBe('DELETE FROM "App"."or""ders" WHERE "id" = $1::integer');
  });

  it('takes SET values from the after image and the key from the before image (a key change moves the row)', () => {
    const s = buildStatements(table, cols('amt', 'id'));
    expect(paramsOf(s.update, ['1.5', '7'], ['2.5', '8'])).toEqual(['2.5', '8', '7']);
    expect(paramsOf(s.delete, ['1.5', '7'], null)).toEqual(['7']);
    expect(paramsOf(s.insert, null, [null, '9'])).toEqual([null, '9']);
  });

  it('a composite key keeps key order; an all-key table upserts with DO NOTHING', () => {
    const t: TargetTable = {
      ...table,
      columns: [
        { name: 'a', type: 'text' },
        { name: 'b', type: 'uuid' },
      ],
      pk: ['b', 'a'],
    };
    const s = buildStatements(t, cols('a', 'b'));
    expect(s.delete.sql).toContain('WHERE "b" = $1::uuid AND "a" = $2::text');
    expect(paramsOf(s.delete, ['x', 'u'], null)).toEqual(['u', 'x']);
    expect(s.upsert.sql).toMatch(/ON CONFLICT \("b", "a"\) DO NOTHING$/);
  });

  it('passes bytea as \\x hex text and numbers as decimal text', () => {
    expect(paramOf(new Uint8Array([0, 255, 16]).subarray(1))).toBe('\\xff10');
    expect(paramOf(12345678901234567890n)).toBe('12345678901234567890');
    expect(paramOf(0.1)).toBe('0.1');
    expect(paramOf(null)).toBeNull();
    expect(paramOf("it's")).toBe("it's");
  });

  it('refuses, clearly, a table without primary key, an unknown column, a key the entry lacks', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as TidemarkError;
      }
      throw new Error('no error');
    };
    const noPk = err(() => buildStatements({ ...table, pk: [] }, cols('id')));
    expect(noPk.code).toBe('APPLY_NO_PK');
    expect(noPk.message).toContain('App.or"ders');
    const unknown = err(() => buildStatements(table, [{ name: 'gone', type: 'int4', columnType: 'integer' }]));
    expect(unknown.code).toBe('APPLY_BAD_ENTRY');
    expect(unknown.message).toContain('column App.or"ders.gone (source type integer) does not exist');
    expect(err(() => buildStatements(table, cols('ts'))).message).toContain('primary-key column id');
  });
});
