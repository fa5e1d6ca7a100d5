import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { codeOnly, parseDdlMessage, statementProblem, truncateSql } from './ddl-message.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('tidemark.ddl messages', () => {
  it('parses the event triggers JSON (oids as the strings jsonb gives, nulls kept)', () => {
    const m = parseDdlMessage(
      bytes(
        JSON.stringify({
          sql: 'drop table app.t',
          tag: 'DROP TABLE',
          schema: 'public',
          search_path: '"$user", public',
          objects: [
            { oid: '16398', type: 'table', relid: '16398', schema: 'app', identity: 'app.t', name: 't' },
            { oid: null, type: 'type', relid: null, schema: 'app', identity: 'app.t[]', name: '_t' },
          ],
        }),
      ),
    );
    expect(m.tag).toBe('DROP TABLE');
    expect(m.objects.map((o) => [o.type, o.oid, o.relid])).toEqual([
      ['table', 16398, 16398],
      ['type', null, null],
    ]);
  });

  it('refuses content that is not the triggers JSON as PG_PROTOCOL', () => {
    for (const bad of ['not json', '{"tag": "X"}', '\u00ff']) {
      const err = (() => {
        try {
          parseDdlMessage(bad === '\u00ff' ? new Uint8Array([0xff]) : bytes(bad));
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(TidemarkError);
      expect((err as TidemarkError).code).toBe('PG_PROTOCOL');
      expect((err as Error).message).toContain("logical message 'tidemark.ddl'");
    }
  });
});

describe('statement texts', () => {
  it('blanks comments, strings, quoted names and dollar quotes', () => {
    expect(codeOnly(`a 'x;y' "q;""r" b -- c;d\ne /* f /* g; */ h; */ i $t$ j; $t$ k $$;$$ l E'\\';' m`)).toBe(
      'a     b  \ne   i   k   l E  m', // each quoted part and comment one blank; E stays (a prefix)
    );
    expect(codeOnly('price$1 + $1')).toBe('price$1 + $1'); // a parameter, not a dollar quote
  });

  it('one DDL statement can be replayed; several statements, DO blocks, CREATE TABLE AS cannot', () => {
    expect(statementProblem('ALTER TABLE', "ALTER TABLE t ADD c text DEFAULT ';';  ")).toBeNull();
    expect(
      statementProblem('CREATE FUNCTION', 'CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;'),
    ).toBeNull();
    expect(statementProblem('ALTER TABLE', '/* hi */ alter table t drop c')).toBeNull();
    expect(statementProblem('ALTER TABLE', 'ALTER TABLE t ADD c int; UPDATE t SET c = 1')).toContain('2 statements');
    expect(statementProblem('ALTER TABLE', "DO $$ BEGIN EXECUTE 'ALTER TABLE t ADD c int'; END $$")).toContain(
      'inside a DO statement',
    );
    expect(statementProblem('CREATE TABLE AS', 'CREATE TABLE t2 AS SELECT * FROM t')).toContain('copies rows');
  });

  it('TRUNCATE names every table quoted, RESTART IDENTITY when the source asked for it', () => {
    const t = [
      { schema: 'app', table: 'a' },
      { schema: 'My "S"', table: 'b' },
    ];
    expect(truncateSql(t, false)).toBe('TRUNCATE TABLE "app"."a", "My ""S"""."b"');
    expect(truncateSql(t.slice(0, 1), true)).toBe('TRUNCATE TABLE "app"."a" RESTART IDENTITY');
  });
});
