import { describe, expect, it } from 'vitest';
import { classifyStatement } from './ddl.ts';
import { addsSystemVersioning, versioningSteps } from './ddl-versioning.ts';

const inc = (t: { schema: string }) => t.schema === 'inc';

function steps(sql: string) {
  const cls = classifyStatement(sql, 'inc');
  if (cls.kind !== 'table-ddl') throw new Error(`not table DDL: ${cls.kind}`);
  return versioningSteps(cls, sql, inc);
}

describe('ALTER TABLE … ADD SYSTEM VERSIONING becomes a copy of the table', () => {
  it('recognizes the clause outside strings and comments', () => {
    expect(addsSystemVersioning('ALTER TABLE t ADD SYSTEM VERSIONING')).toBe(true);
    expect(addsSystemVersioning('alter table t add column x int, add  system\nversioning')).toBe(true);
    expect(addsSystemVersioning("ALTER TABLE t COMMENT 'ADD SYSTEM VERSIONING'")).toBe(false);
    expect(addsSystemVersioning('ALTER TABLE t /* ADD SYSTEM VERSIONING */ ADD c INT')).toBe(false);
    expect(addsSystemVersioning('ALTER TABLE t DROP SYSTEM VERSIONING')).toBe(false);
  });

  it('copies an included table; other statements and tables are left alone', () => {
    expect(steps('ALTER TABLE t ADD SYSTEM VERSIONING')).toEqual([
      { kind: 'copy', table: { schema: 'inc', table: 't' } },
    ]);
    expect(steps('ALTER TABLE out.t ADD SYSTEM VERSIONING')).toBeNull();
    expect(steps('ALTER TABLE t ADD COLUMN c INT')).toBeNull();
    expect(steps('CREATE TABLE t2 (id INT) WITH SYSTEM VERSIONING')).toBeNull();
  });
});
